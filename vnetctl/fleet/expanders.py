"""Controller-side expansion: what a module needs computed across the fleet before any
of its tasks runs (VXLAN peers today; LACP partners, port-group consistency next).

An expander is registered by a package under `vnetctl/fleet/` that defines
`EXPANDERS = [Expander(module=..., expand=..., reach=..., snapshot=...)]` (found by
vnetctl.fleet.plugins); nothing else changes to add one. `expand(expansion, plans)`
returns NEW plans (it never edits a task's arguments in place) or refuses with
InputError before any host is touched.
`reach(run, plans)` names hosts outside the run the expansion needs to read (mesh
members beyond --limit). `snapshot(expansion, tasks_by_host)` completes what one
host's live state cannot say (a mesh's members). Arguments a module's spec marks
`"controller": True` are the expanders' input: they are removed from every task once
all expanders ran, so the host never sees them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from vnetctl.fleet import plugins
from vnetctl.fleet.context import RunContext
from vnetctl.playbook.render import PlayPlan

Gather = Callable[[Sequence[str]], Awaitable[dict[str, Any]]]  # hosts -> facts or why not
SnapshotTasks = dict[str, list[tuple[str, dict[str, Any]]]]  # host -> [(module, params)]


@dataclass
class Expansion:
    """What an expander works with: the run, every host's facts on demand (gathered
    once, read-only), and whether to plan members on the controller first."""

    run: RunContext
    gather: Gather
    preflight: bool = True
    # drift checks: host -> what could not be planned because another host is
    # unreachable (instead of refusing the whole run)
    unchecked: dict[str, str] | None = None
    known: dict[str, Any] = field(default_factory=dict)  # facts gathered already

    async def facts(self, hosts: Sequence[str]) -> dict[str, Any]:
        missing = [h for h in dict.fromkeys(hosts) if h not in self.known]
        if missing:
            self.known.update(await self.gather(missing))
        return {h: self.known[h] for h in hosts}

    def leave_out(self, host: str, note: str) -> None:
        if self.unchecked is not None:
            old = self.unchecked.get(host)
            self.unchecked[host] = f"{old}; {note}" if old else note


@dataclass(frozen=True)
class Expander:
    module: str
    expand: Callable[[Expansion, list[PlayPlan]], Awaitable[list[PlayPlan]]]
    reach: Callable[[RunContext, list[PlayPlan]], list[str]] | None = None
    snapshot: Callable[[Expansion, SnapshotTasks], Awaitable[SnapshotTasks]] | None = None


@cache
def registered() -> tuple[Expander, ...]:
    """Every expander the packages under vnetctl/fleet register."""
    return tuple(plugins.registered("EXPANDERS"))


def uses(plans: Sequence[PlayPlan], module: str) -> bool:
    return any(t.module == module for p in plans for ts in p.tasks.values() for t in ts)


def hosts_to_reach(run: RunContext, plans: list[PlayPlan]) -> list[str]:
    """The hosts of the run, then those the expanders need to read."""
    hosts = [h for plan in plans for h in plan.hosts]
    for expander in registered():
        if expander.reach is not None and uses(plans, expander.module):
            hosts += expander.reach(run, plans)
    return list(dict.fromkeys(hosts))


async def expand(expansion: Expansion, plans: list[PlayPlan]) -> list[PlayPlan]:
    """Every expander whose module the plans use, then the controller-only arguments
    removed from every task."""
    for expander in registered():
        if uses(plans, expander.module):
            plans = await expander.expand(expansion, plans)
    return strip_controller_args(plans, expansion.run.catalog)


async def complete_snapshot(expansion: Expansion, tasks: SnapshotTasks) -> SnapshotTasks:
    for expander in registered():
        if expander.snapshot is not None:
            tasks = await expander.snapshot(expansion, tasks)
    return tasks


def controller_args(spec: dict) -> set[str]:
    return {name for name, rule in spec.items() if rule.get("controller")}


def strip_controller_args(plans: list[PlayPlan], catalog) -> list[PlayPlan]:
    out = []
    for plan in plans:
        tasks = {}
        for host, host_tasks in plan.tasks.items():
            kept = []
            for task in host_tasks:
                if getattr(task, "result", None) is not None:  # a verb: ran on the controller
                    kept.append(task)
                    continue
                drop = controller_args(catalog[task.module]) & set(task.args)
                args = {k: v for k, v in task.args.items() if k not in drop}
                kept.append(dataclasses.replace(task, args=args) if drop else task)
            tasks[host] = kept
        out.append(dataclasses.replace(plan, tasks=tasks))
    return out
