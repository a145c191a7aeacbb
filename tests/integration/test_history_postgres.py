"""The drift history in PostgreSQL, on a real server the test starts (tests/pg_server.py):
the same records as SQLite, its schema created and versioned at open, the password taken
from the URL, PGPASSWORD or ~/.pgpass and shown nowhere, and a server that is down costs
the run its history entry, never its report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.pg_server import PASSWORD, PgServer, pg_server, skip_reason, stop
from vnetctl.cli.main import main
from vnetctl.drift.history import SCHEMA_VERSION, History, HistoryUnusable
from vnetctl.drift.publish import publish
from vnetctl.drift.report import DriftItem, DriftReport, HostDrift, HostState, Kind

T0 = 1_790_000_000.123456


@pytest.fixture
def server() -> Iterator[PgServer]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with pg_server() as found:
        yield found


def report(started: float = T0, mtu: int = 1500) -> DriftReport:
    item = DriftItem("h2", "link eth2", Kind.DIFFERENT, "mtu", 9000, mtu, "site", "storage")
    hosts = [HostDrift("h1", HostState.IN_SYNC, resources=2),
             HostDrift("h2", HostState.DRIFTED, resources=2, items=[item]),
             HostDrift("h3", HostState.UNREACHABLE, reason="connection refused")]  # fmt: skip
    return DriftReport("site.yml", "inv.yml", started, 1.5, hosts=hosts)


def test_runs_are_recorded_and_read_back_as_in_sqlite(server, monkeypatch, capsys):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert main(["drift", "history", "--history", server.url(), "--schema"]) == 0
    assert f"schema {SCHEMA_VERSION} (created)" in capsys.readouterr().out
    with History(server.url()) as history:
        first = report()
        history.record(first, "check", "site", shard="1/2")
        second = report(T0 + 60)
        history.record(second, "check", "site", shard="1/2")
        assert second.previous_run == T0  # epoch seconds kept whole (DOUBLE PRECISION)
        assert second.items()[0].first_seen == T0  # carried over from the first run
        runs = history.runs("check")
        assert [r.id for r in runs] == [second.run_id, first.run_id]
        assert runs[0].items["different"] == 1 and runs[0].hosts == 3
        assert [i.to_dict() for i in history.items(second.run_id)] == [
            i.to_dict() for i in second.items()
        ]
        version = history.db.execute("SELECT version FROM vnetctl_schema").fetchall()
        assert version == [(SCHEMA_VERSION,)]
    assert main(["drift", "history", "--history", server.url(), "--schema"]) == 0
    assert f"schema {SCHEMA_VERSION} (current)" in capsys.readouterr().out
    with History(server.url()) as again:  # opened again: migrated already, nothing to do
        assert len(again.runs()) == 2
        again.db.execute("UPDATE vnetctl_schema SET version = 99")
    with pytest.raises(HistoryUnusable, match="newer vnetctl .schema 99"):
        History(server.url())


def test_the_password_comes_from_url_pgpassword_or_pgpass_and_is_never_shown(
    server, monkeypatch, tmp_path, capsys
):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(HistoryUnusable) as refused:  # no password anywhere: refused
        History(server.url())
    assert "password" in str(refused.value).lower()
    with History(server.url(password=True)) as history:
        assert PASSWORD not in history.path and ":***@" in history.path
        history.record(report(), "check", "site")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"# a comment\nother:*:*:*:nope\nlocalhost:5432:vnetctl:vnetctl:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert main(["drift", "history", "--history", server.url(), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 1
    assert main(["drift", "report", "--history", server.url(password=True)]) == 3 - 1  # drift
    out, err = capsys.readouterr()
    assert "h2" in out and PASSWORD not in out + err


def test_a_server_that_is_down_costs_the_history_entry_never_the_report(server, tmp_path, capsys):
    stop(server)
    said: list[str] = []
    written = publish(report(), "check", "site", [("json", tmp_path / "r.json", "-o")],
                      history=server.url(password=True), say=said.append)  # fmt: skip
    assert written  # the exit code stays the drift's (2), as with SQLite
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["exit_code"] == 2
    assert len(said) == 1 and "this run is not recorded" in said[0], said
    assert ":***@" in said[0] and PASSWORD not in said[0]
    assert PASSWORD not in (tmp_path / "r.json").read_text()
    assert os.environ.get("PGPASSWORD") != PASSWORD
