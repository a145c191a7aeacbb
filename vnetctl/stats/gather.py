"""`vnetctl stats`: one read-only pass over the fleet (modules/net_stats.py, one SSH
session per host) collecting per-port counters, carrier changes, bond member state,
Open vSwitch interface statistics and HTB class counters, for text, JSON and Prometheus
output; with a playbook's declarations (vnetctl.stats.declared), only what it declares."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vnetctl.fleet.context import RunContext
from vnetctl.fleet.execute import execute
from vnetctl.playbook.adhoc import adhoc_plan
from vnetctl.runner.results import RunResult
from vnetctl.stats.declared import Declared, is_declared, name_classes

MODULE = "net_stats"


@dataclass
class StatsReport:
    inventory: str
    started: float  # epoch seconds
    duration: float = 0.0
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> stats
    errors: dict[str, str] = field(default_factory=dict)  # host -> why none
    unreachable: set[str] = field(default_factory=set)
    exit_code: int = 0
    overlay: dict[str, Any] | None = None  # --probe: pairs, errors (vnetctl.stats.overlay)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "inventory": self.inventory,
            "started": self.started,
            "duration": self.duration,
            "exit_code": self.exit_code,
            "hosts": self.hosts,
            "errors": self.errors,
            "overlay": self.overlay,
        }


def gather(
    run: RunContext,
    hosts: Sequence[str],
    inventory: str,
    declared: dict[str, Declared] | None = None,
) -> StatsReport:
    """Every host's counters; `declared` (per host): only what the playbook declares."""
    started, clock = time.time(), time.monotonic()
    outcome: RunResult = execute([adhoc_plan(MODULE, {}, list(hosts), name="read counters")], run)
    report = StatsReport(inventory, started, unreachable=set(outcome.unreachable))
    report.errors.update(outcome.unreachable)
    for result in outcome.results:
        if "stats" in result.data:
            mine = None if declared is None else declared.get(result.host, Declared())
            report.hosts[result.host] = select(run, result.data["stats"], mine)
        else:
            report.errors.setdefault(result.host, f"{result.status.value}: {result.msg}")
    report.duration = time.monotonic() - clock
    report.exit_code = outcome.exit_code()
    return report


def select(run: RunContext, stats: dict[str, Any], mine: Declared | None) -> dict[str, Any]:
    """A host's stats, its classes named; with a declaration, only the declared ports,
    OVS interfaces and classes."""
    out = dict(stats, tc_classes=name_classes(run.catalog, stats.get("tc_classes") or {}, mine))
    if mine is not None:
        out["ports"] = {n: p for n, p in stats["ports"].items() if is_declared(n, mine)}
        if stats.get("ovs") is not None:
            out["ovs"] = {n: i for n, i in stats["ovs"].items() if is_declared(n, mine)}
        out["vxlan_peers"] = {d: p for d, p in stats["vxlan_peers"].items() if d in mine.vxlan}
        for key in ("ovs_bridges", "ovs_bonds"):  # bridges and bonds a task names
            if stats.get(key) is not None:
                out[key] = {n: v for n, v in stats[key].items() if n in mine.ports}
    return out
