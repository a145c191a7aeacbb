"""`vnetctl stats`: one read-only pass over the fleet (modules/net_stats.py, one SSH
session per host) collecting per-port counters, carrier changes, bond member state and
Open vSwitch interface statistics, for text, JSON and Prometheus output."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vnetctl.fleet.context import RunContext
from vnetctl.fleet.execute import execute
from vnetctl.playbook.adhoc import adhoc_plan
from vnetctl.runner.results import RunResult

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "inventory": self.inventory,
            "started": self.started,
            "duration": self.duration,
            "exit_code": self.exit_code,
            "hosts": self.hosts,
            "errors": self.errors,
        }


def gather(run: RunContext, hosts: Sequence[str], inventory: str) -> StatsReport:
    started, clock = time.time(), time.monotonic()
    outcome: RunResult = execute([adhoc_plan(MODULE, {}, list(hosts), name="read counters")], run)
    report = StatsReport(inventory, started, unreachable=set(outcome.unreachable))
    report.errors.update(outcome.unreachable)
    for result in outcome.results:
        if "stats" in result.data:
            report.hosts[result.host] = result.data["stats"]
        else:
            report.errors.setdefault(result.host, f"{result.status.value}: {result.msg}")
    report.duration = time.monotonic() - clock
    report.exit_code = outcome.exit_code()
    return report
