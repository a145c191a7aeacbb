"""`vnetctl drift history`: a run that does not exist is an error; reading a history that
does not exist reports none and creates nothing."""

from __future__ import annotations

import json

from drift_samples import T0, full_report

from vnetctl.cli.main import main
from vnetctl.drift.history import History


def recorded(path) -> int:
    with History(path) as history:
        report = full_report(T0)
        history.record(report, "c1", "site.yml on lab.yml")
    return report.run_id


def test_a_run_that_does_not_exist_is_an_error(tmp_path, capsys):
    db = tmp_path / "h.sqlite"
    run = recorded(db)
    assert main(["drift", "history", "--history", str(db), "--run", str(run)]) == 0
    assert "bridge br-vm" in capsys.readouterr().out
    assert main(["drift", "history", "--history", str(db), "--run", "999"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and f"there is no run 999 in {db}" in err
    assert main(["drift", "history", "--history", str(db), "--run", "999", "--format", "json"]) == 1


def test_a_missing_history_is_reported_and_not_created(tmp_path, capsys):
    db = tmp_path / "absent" / "h.sqlite"
    assert main(["drift", "history", "--history", str(db)]) == 0
    assert (
        capsys.readouterr().out == f"no drift history at {db}: no check has been recorded there\n"
    )
    assert main(["drift", "history", "--history", str(db), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"runs": []}
    assert main(["drift", "history", "--history", str(db), "--run", "1"]) == 1
    assert "there is no run 1: no history at" in capsys.readouterr().err
    assert not db.parent.exists()


def test_the_default_history_is_not_created_by_reading_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VNETCTL_STATE_DIR", str(tmp_path / "state"))
    assert main(["drift", "history"]) == 0
    assert "no drift history at" in capsys.readouterr().out
    assert not (tmp_path / "state").exists()


def test_a_run_without_items_says_so(tmp_path, capsys):
    db = tmp_path / "h.sqlite"
    with History(db) as history:
        report = full_report(T0)
        report.hosts = report.hosts[:1]  # in sync
        report.consistency = []
        history.record(report, "c1")
    assert main(["drift", "history", "--history", str(db), "--run", str(report.run_id)]) == 0
    assert capsys.readouterr().out == f"run {report.run_id}: no drift items\n"
