"""`vnetctl drift report`: the shards' last runs of one check, read back from the history
they share, are one report of the fleet: the same hosts and items as one controller's."""

from __future__ import annotations

import copy
import json

from drift_samples import T0, full_report

from vnetctl.cli.main import main
from vnetctl.drift.history import History
from vnetctl.drift.report import DriftReport
from vnetctl.fleet.shards import Shard

CHECK = "c0ffee"


def shard_report(whole: DriftReport, shard: Shard, started: float) -> DriftReport:
    part = copy.deepcopy(whole)
    part.hosts = [h for h in part.hosts if shard.holds(h.host)]
    part.consistency, part.resolved, part.started = [], [], started
    return part


def hosts_and_items(doc: dict) -> list:
    return [
        (h["host"], h["state"], h["reason"], h["resources"],
         [(i["key"], i["kind"], i["field"], i["declared"], i["actual"]) for i in h["items"]])
        for h in doc["hosts"]
    ]  # fmt: skip


def record_shards(db, whole: DriftReport, count: int, skip: int | None = None) -> None:
    with History(db) as history:
        for index in range(1, count + 1):
            if index != skip:
                shard = Shard(index, count)
                part = shard_report(whole, shard, T0 + index)
                history.record(part, CHECK, "site", shard=str(shard))


def test_the_shards_last_runs_are_the_fleets_report(tmp_path, capsys):
    whole, db = full_report(), tmp_path / "h.sqlite"
    record_shards(db, whole, 2)  # an older round: the last run of each shard wins
    for host in whole.hosts:
        host.items = [i for i in host.items if i.kind.value != "extra"]
    record_shards(db, whole, 3)
    assert main(["drift", "report", "--history", str(db), "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert hosts_and_items(doc) == hosts_and_items(whole.to_dict())
    assert doc["summary"]["hosts"] == 4 and doc["started"] == T0 + 1


def test_a_shard_without_a_run_is_named_and_its_hosts_missing(tmp_path, capsys):
    whole, db = full_report(), tmp_path / "h.sqlite"
    for host in whole.hosts:
        host.items = []  # no drift anywhere: the missing shard decides
    absent = Shard(2, 3)
    assert any(absent.holds(h.host) for h in whole.hosts)
    record_shards(db, whole, 3, skip=2)
    argv = ["drift", "report", "--history", str(db), "--check", CHECK, "--format", "json"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "shard 2/3 has no recorded run: its hosts are missing" in err
    reported = {h["host"] for h in json.loads(out)["hosts"]}
    assert reported == {h.host for h in whole.hosts if not absent.holds(h.host)}


def test_no_history_or_no_such_check_is_an_error(tmp_path, capsys):
    db = tmp_path / "h.sqlite"
    assert main(["drift", "report", "--history", str(db)]) == 1
    assert not db.exists()  # reading never creates a history
    record_shards(db, full_report(), 1)
    assert main(["drift", "report", "--history", str(db), "--check", "nope"]) == 1
    assert "no recorded run of check nope" in capsys.readouterr().err


def test_two_controllers_opening_a_new_history_at_once_both_record(tmp_path, monkeypatch):
    """The shards start together: one creates the history between the other's first
    look (version 0) and its write lock; the other then finds it made."""
    db, original = tmp_path / "h.sqlite", History._transaction
    raced = []

    def other_controller_first(self):
        if not raced:
            raced.append(True)
            with History(db):  # the other shard, faster, makes the schema
                pass
        return original(self)

    monkeypatch.setattr(History, "_transaction", other_controller_first)
    with History(db) as history:
        history.record(full_report(), CHECK, "site", shard="1/2")
    with History(db) as again:
        assert raced and len(again.runs()) == 1
