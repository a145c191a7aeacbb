"""One drift check: plan every host in check mode (the code path of `run --check`) and
turn the plan into a drift report (recorded in the history by vnetctl.drift.publish)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from vnetctl.drift.classify import classify_run
from vnetctl.drift.report import DriftReport, check_id, scope_words
from vnetctl.errors import Interrupted
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.execute import execute
from vnetctl.runner.control import Events


@dataclass
class CheckTarget:
    """What a drift check compares: a playbook against an inventory (and a limit, and the
    tasks --tags and --skip-tags keep)."""

    playbook: str
    inventory: str  # the -i sources, comma-separated (Ansible's ANSIBLE_INVENTORY form)
    limit: str | None = None
    tags: list[str] | None = None
    skip_tags: list[str] | None = None

    @property
    def check_id(self) -> str:
        """The history's key: runs of the same check are compared with each other."""
        return check_id(self.playbook, self.inventory, self.limit, self.tags, self.skip_tags)

    @property
    def label(self) -> str:
        names = ",".join(Path(source).name for source in self.inventory.split(","))
        label = f"{Path(self.playbook).name} on {names}"
        scope = scope_words(self.limit, self.tags, self.skip_tags)
        return f"{label} {scope}" if scope else label


def run_check(
    target: CheckTarget,
    plans: list,
    run: RunContext,
    events: Events | None = None,
) -> DriftReport:
    if not run.options.check:
        raise ValueError("a drift check plans in check mode only")
    started, clock = time.time(), time.monotonic()
    unchecked: dict[str, str] = {}
    outcome = execute(plans, run, events, unchecked)
    if outcome.interrupted:  # a partial check proves nothing: no report, no history
        raise Interrupted("drift check interrupted: no report written, nothing recorded")
    hosts, consistency = classify_run(outcome, run.catalog.flatten)
    for host in hosts:  # never silent about what could not be compared
        if host.host in unchecked:
            host.reason = "; ".join(filter(None, [host.reason, unchecked[host.host]]))
    report = DriftReport(
        playbook=target.playbook,
        inventory=target.inventory,
        limit=target.limit,
        tags=target.tags,
        skip_tags=target.skip_tags,
        started=started,
        duration=time.monotonic() - clock,
        hosts=hosts,
        consistency=consistency,
    )
    return report
