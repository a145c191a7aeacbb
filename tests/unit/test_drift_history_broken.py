"""A drift check whose history breaks (damaged pages, a full disk, a newer schema) still
writes every report, says so in one line, and exits with the drift's code (issue 31).

The hosts' part of the check is replaced by a recorded outcome: what is tested is the
controller after every host was checked."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from vnetctl.cli.main import main
from vnetctl.drift import check, publish
from vnetctl.drift.history import History
from vnetctl.runner.results import RunResult, Status, TaskResult

PLAYBOOK = """\
- hosts: all
  tasks:
    - name: uplink MTU
      link: {name: eth1, mtu: 9000}
"""
INVENTORY = "all:\n  hosts:\n    h1: {ansible_host: 192.0.2.1}\n    h2: {ansible_host: 192.0.2.2}\n"


def outcome(*_args, **_kwargs) -> RunResult:
    """h1 in sync, h2 drifted: exit 2."""
    same = TaskResult("h1", "all", 0, "uplink MTU", "link", Status.OK, resource="link eth1")
    drifted = TaskResult(
        "h2", "all", 0, "uplink MTU", "link", Status.CHANGED, resource="link eth1",
        changes=[{"field": "mtu", "before": 1500, "after": 9000}],
        diff={"before": {"mtu": 1500}, "after": {"mtu": 9000}},
    )  # fmt: skip
    return RunResult(results=[same, drifted], hosts=["h1", "h2"])


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "execute", outcome)
    (tmp_path / "book.yml").write_text(PLAYBOOK)
    (tmp_path / "inv.yml").write_text(INVENTORY)
    return tmp_path


def drift(space: Path, db: Path, *extra: str) -> int:
    reports = [f"--report=json={space / 'drift.json'}", f"--report=prometheus={space / 'd.prom'}"]
    argv = ["drift", str(space / "book.yml"), "-i", str(space / "inv.yml"), "--history", str(db)]
    return main([*argv, *reports, *extra])


def damage(db: Path) -> None:
    """Every page but the header page overwritten: the schema and the rows are garbage."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(db.read_bytes())
    data[size:] = bytes((i * 7 + 3) % 256 for i in range(len(data) - size))
    db.write_bytes(bytes(data))


def assert_reports_written(space: Path, recorded: bool) -> None:
    doc = json.loads((space / "drift.json").read_text())
    assert doc["summary"]["exit_code"] == 2 and doc["summary"]["items"]["different"] == 1
    assert (doc["run_id"] is not None) == recorded
    assert ',host="h2",kind="different"} 1' in (space / "d.prom").read_text()


def one_line(err: str, words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], err
    assert "Traceback" not in err


def test_damaged_pages_cost_the_history_entry_never_the_reports(workspace, capsys):
    db = workspace / "h.sqlite"
    assert drift(workspace, db) == 2
    assert drift(workspace, db) == 2
    capsys.readouterr()
    damage(db)
    (workspace / "drift.json").unlink()
    assert drift(workspace, db) == 2
    out, err = capsys.readouterr()
    one_line(err, "this run is not recorded")
    assert "malformed" in err or "not a database" in err
    assert_reports_written(workspace, recorded=False)
    assert "h2" in out  # stdout still has the report


def test_a_full_disk_at_commit_leaves_the_reports_written_first(workspace, capsys, monkeypatch):
    """The run's pages are written to disk at COMMIT, after the report files: SQLite's
    own error for a full disk there (a real full filesystem: the fault suite's lab
    test) leaves the reports, which name the run the history could not keep."""
    db = workspace / "h.sqlite"
    assert drift(workspace, db) == 2
    capsys.readouterr()
    reports_then_commit = []
    real_commit, real_write = History.commit, publish.write_files

    def full(self: History) -> None:
        reports_then_commit.append("commit")
        self.db.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    def writes(*args, **kwargs):
        reports_then_commit.append("reports")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(History, "commit", full)
    monkeypatch.setattr(publish, "write_files", writes)
    assert drift(workspace, db) == 2
    assert reports_then_commit == ["reports", "commit"]
    one_line(capsys.readouterr().err, "run 2 was not recorded (database or disk is full)")
    assert_reports_written(workspace, recorded=True)
    monkeypatch.setattr(History, "commit", real_commit)
    with History(db) as history:
        assert history.has_run(1) and not history.has_run(2)


def test_a_history_of_a_newer_vnetctl_is_one_line_and_the_check_goes_on(workspace, capsys):
    db = workspace / "h.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version=99")
    conn.close()
    assert drift(workspace, db) == 2
    one_line(capsys.readouterr().err, "newer vnetctl")
    assert_reports_written(workspace, recorded=False)


def test_a_report_that_cannot_be_written_is_one_line_the_rest_is_written(workspace, capsys):
    db = workspace / "h.sqlite"
    gone = workspace / "later"
    gone.mkdir()
    argv = [f"--report=html={gone / 'd.html'}"]
    real = check.run_check

    def remove_directory_meanwhile(*args, **kwargs):
        gone.rmdir()  # after the check was prepared: a directory removed while hosts ran
        return real(*args, **kwargs)

    import vnetctl.cli.drift_cmd as drift_cmd

    drift_cmd.run_check, saved = remove_directory_meanwhile, drift_cmd.run_check
    try:
        assert drift(workspace, db, *argv) == 2  # drift found wins: alerting sees it
    finally:
        drift_cmd.run_check = saved
    one_line(capsys.readouterr().err, f"--report html {gone / 'd.html'} not written")
    assert_reports_written(workspace, recorded=True)
    with History(db) as history:
        assert history.has_run(1)


def test_reading_a_damaged_history_is_an_error_in_one_line(workspace, capsys):
    db = workspace / "h.sqlite"
    assert drift(workspace, db) == 2
    damage(db)
    capsys.readouterr()
    assert main(["drift", "history", "--history", str(db)]) == 1
    one_line(capsys.readouterr().err, "not usable")
