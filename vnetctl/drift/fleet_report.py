"""The fleet's drift report from the history: the last run of each shard of a check
(`drift --shard K/N`, several controllers writing one history), as one report.

The hosts and items are those each shard recorded, with their first-seen times. What a
single run computes across all its hosts is not in it: fields whose actual values
differ between hosts of different shards (`consistency`), and items resolved since the
previous run (each shard's own runs list those)."""

from __future__ import annotations

from dataclasses import dataclass

from vnetctl.drift.history import History
from vnetctl.drift.report import DriftReport, HostDrift, HostState, natural_key


@dataclass
class FleetReport:
    report: DriftReport
    runs: list[int]  # the runs it is made of
    missing_shards: list[str]  # "K/N" with no recorded run: their hosts are absent


def latest_check(history: History) -> str | None:
    row = history.db.execute("SELECT check_id FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def fleet_report(history: History, check: str) -> FleetReport | None:
    """None when the check has no run. The last run's shard count decides the shards:
    the last run of each; an unsharded last run is the report alone."""
    last = history.db.execute(
        "SELECT id, shard FROM runs WHERE check_id=? ORDER BY id DESC LIMIT 1", (check,)
    ).fetchone()
    if last is None:
        return None
    runs, missing = [last[0]], []
    if last[1]:
        count = int(last[1].partition("/")[2])
        runs, missing = [], []
        for index in range(1, count + 1):
            row = history.db.execute(
                "SELECT MAX(id) FROM runs WHERE check_id=? AND shard=?",
                (check, f"{index}/{count}"),
            ).fetchone()
            if row[0] is None:
                missing.append(f"{index}/{count}")
            else:
                runs.append(row[0])
    return FleetReport(_merged(history, runs), runs, missing)


def _merged(history: History, runs: list[int]) -> DriftReport:
    marks = ",".join("?" * len(runs))
    heads = history.db.execute(
        f"SELECT playbook, inventory, limit_pattern, started, duration FROM runs "
        f"WHERE id IN ({marks}) ORDER BY id",
        runs,
    ).fetchall()
    started = min(h[3] for h in heads)
    ended = max(h[3] + h[4] for h in heads)
    hosts = []
    for run_id, host, state, reason, resources in history.db.execute(
        f"SELECT run_id, host, state, reason, resources FROM run_hosts WHERE run_id IN ({marks})",
        runs,
    ).fetchall():
        items = history.items(run_id, host)
        hosts.append(HostDrift(host, HostState(state), reason, resources, items))
    hosts.sort(key=lambda h: natural_key(h.host))
    return DriftReport(
        playbook=heads[-1][0],
        inventory=heads[-1][1],
        limit=heads[-1][2],
        started=started,
        duration=ended - started,
        hosts=hosts,
        run_id=max(runs),
    )
