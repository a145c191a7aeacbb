"""The SQLite drift history: first-seen times carried across runs, resolved items,
unreachable hosts that forget nothing, separate checks, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest
from drift_samples import T0, item

from vnetctl.drift.history import History, default_path
from vnetctl.drift.report import DriftReport, HostDrift, HostState, Kind
from vnetctl.errors import InputError


def report(started, **hosts) -> DriftReport:
    """hosts: name -> list of items, or a HostState for an unreachable/failed host."""
    out = DriftReport("p.yml", "i.yml", started=started, duration=1)
    for name, items in hosts.items():
        if isinstance(items, HostState):
            out.hosts.append(HostDrift(name, items, reason="down"))
        else:
            state = HostState.DRIFTED if items else HostState.IN_SYNC
            out.hosts.append(HostDrift(name, state, resources=1, items=items))
    return out


MTU = item("h1")
PORT = item("h1", kind=Kind.EXTRA, field="ports", declared=None, actual="eth9")


def test_first_seen_carries_over_and_resolved_items_are_listed(tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        first = report(T0, h1=[item("h1")])
        history.record(first, "c1")
        assert first.items()[0].first_seen == T0 and first.previous_run is None

        second = report(T0 + 900, h1=[item("h1"), PORT])
        history.record(second, "c1")
        seen = {i.kind: i.first_seen for i in second.items()}
        assert seen == {Kind.DIFFERENT: T0, Kind.EXTRA: T0 + 900}
        assert second.previous_run == T0 and second.resolved == []

        third = report(T0 + 1800, h1=[])
        history.record(third, "c1")
        assert {(i.kind, i.field) for i in third.resolved} == {
            (Kind.DIFFERENT, "mtu"),
            (Kind.EXTRA, "ports"),
        }
        assert [r.id for r in history.runs("c1")] == [third.run_id, second.run_id, first.run_id]
        assert history.items(second.run_id)[1].actual == "eth9"


def test_an_unreachable_host_resolves_nothing_and_keeps_its_first_seen(tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        history.record(report(T0, h1=[item("h1")]), "c1")
        down = report(T0 + 900, h1=HostState.UNREACHABLE)
        history.record(down, "c1")
        assert down.resolved == []
        back = report(T0 + 1800, h1=[item("h1")])
        history.record(back, "c1")
        assert back.items()[0].first_seen == T0


def test_checks_do_not_mix(tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        history.record(report(T0, h1=[item("h1")]), "c1")
        other = report(T0 + 60, h1=[item("h1")])
        history.record(other, "c2")
        assert other.items()[0].first_seen == T0 + 60 and other.previous_run is None
        assert len(history.runs()) == 2 and len(history.runs("c2")) == 1


def _writer(path, n):
    with History(path) as history:
        for k in range(n):
            history.record(report(T0 + k, h1=[item("h1")], h2=[]), "shared")


def test_concurrent_writers_neither_fail_nor_corrupt(tmp_path):
    path = tmp_path / "h.sqlite"
    History(path).db.close()
    procs = [multiprocessing.Process(target=_writer, args=(path, 10)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 40
    assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 40


def test_a_database_from_a_newer_vnetctl_is_refused(tmp_path):
    path = tmp_path / "h.sqlite"
    sqlite3.connect(path).execute("PRAGMA user_version=99")
    with pytest.raises(InputError, match="newer vnetctl"):
        History(path)


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VNETCTL_STATE_DIR", str(tmp_path))
    assert default_path() == tmp_path / "drift.sqlite"
    monkeypatch.delenv("VNETCTL_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert default_path() == tmp_path / "x" / "vnetctl" / "drift.sqlite"
