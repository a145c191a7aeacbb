"""A playbook from live hosts: what each module finds on them, declared so that applying
it to the same hosts plans nothing (the DR site's starting point).

Each module that can describe a host's state has `snapshot(facts) -> [params]` and a
`SNAPSHOT_ORDER` (what makes devices comes before what uses them). What one host's
state cannot say (a mesh's members) the fleet expanders complete (see
vnetctl.fleet.expanders). Hosts with the same tasks share a play.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import yaml

from vnetctl.catalog import Catalog
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.execute import make_runner, run_interruptible
from vnetctl.fleet.expanders import Expansion, complete_snapshot
from vnetctl.output.words import count
from vnetctl.printable import printable

Task = tuple[str, dict[str, Any]]  # module, params


def snapshot_modules(catalog: Catalog) -> list[str]:
    names = [n for n in catalog if hasattr(catalog.load(n), "snapshot")]
    return sorted(names, key=lambda n: (getattr(catalog.load(n), "SNAPSHOT_ORDER", 50), n))


def host_tasks(catalog: Catalog, facts: Mapping[str, Any]) -> list[Task]:
    seen = catalog.facts(facts)
    return [
        (name, params)
        for name in snapshot_modules(catalog)
        for params in catalog.snapshot(name, seen)  # none where facts lack its
    ]


def fleet_tasks(run: RunContext, facts: dict[str, Any]) -> tuple[dict[str, list[Task]], dict]:
    """Each host's tasks from its facts, completed by the fleet expanders (which may read
    other inventory hosts); and notes, per host, of what could not be completed."""
    tasks = {host: host_tasks(run.catalog, host_facts) for host, host_facts in facts.items()}
    runner = make_runner(run, list(run.inventory.hosts))
    notes: dict[str, str] = {}

    async def complete() -> dict[str, list[Task]]:
        try:
            expansion = Expansion(run, runner.gather_facts, unchecked=notes, known=dict(facts))
            return await complete_snapshot(expansion, tasks)
        finally:
            await runner.pool.close_all()

    return run_interruptible(runner, complete()), notes


def build_playbook(catalog: Catalog, tasks_by_host: dict[str, list[Task]]) -> list[dict]:
    """Hosts with the same tasks share a play; a module's tasks that span hosts
    (SNAPSHOT_FLEET: security_groups resolves membership from its play's hosts) go in
    plays of their own, after, with every host that has the same task."""
    fleet = {n for n in {m for ts in tasks_by_host.values() for m, _ in ts}
             if getattr(catalog.load(n), "SNAPSHOT_FLEET", False)}  # fmt: skip
    local = {h: [t for t in ts if t[0] not in fleet] for h, ts in tasks_by_host.items()}
    spanning = {h: [t for t in ts if t[0] in fleet] for h, ts in tasks_by_host.items()}
    return _plays(catalog, local, "network") + _plays(
        catalog, {h: ts for h, ts in spanning.items() if ts}, "policy"
    )


def _plays(catalog: Catalog, tasks_by_host: dict[str, list[Task]], what: str) -> list[dict]:
    groups: dict[str, list[str]] = defaultdict(list)
    for host in sorted(tasks_by_host):
        key = yaml.safe_dump(tasks_by_host[host], sort_keys=True)
        groups[key].append(host)
    plays = []
    for hosts in sorted(groups.values()):
        tasks = tasks_by_host[hosts[0]]
        plays.append(
            {
                "name": f"{what} of {', '.join(hosts)}",
                "hosts": ",".join(hosts),
                "tasks": [
                    {"name": _task_name(catalog, module, params), module: params}
                    for module, params in tasks
                ],
            }
        )
    return plays


def _task_name(catalog: Catalog, module: str, params: dict) -> str:
    kind = getattr(catalog.load(module), "RESOURCE", None) or module
    return f"{kind} {catalog.resource_name(module, params) or ''}".strip()


def to_yaml(plays: list[dict], hosts: list[str], errors: Mapping[str, str],
            notes: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """`hosts`: those the snapshot describes; `errors`: those left out, and why."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    header = [
        f"# Snapshot of {count(len(hosts), 'host')} taken by `vnetctl snapshot` at {when}.",
        "# Applied to the same hosts it plans nothing; edit names and addresses for a new site.",
    ]
    # one comment line each: a line break in a reason would start YAML of its own
    header += [printable(f"# NOT INCLUDED: {host}: {reason}")
               for host, reason in sorted(errors.items())]  # fmt: skip
    header += [printable(f"# INCOMPLETE: {host}: {note}")
               for host, note in sorted((notes or {}).items())]  # fmt: skip
    body = yaml.safe_dump(plays, sort_keys=False, default_flow_style=None, width=100)
    return "\n".join(header) + "\n" + body
