"""A playbook from live hosts: what each module finds on them, declared so that applying
it to the same hosts plans nothing (the DR site's starting point).

Each module that can describe a host's state has `snapshot(facts) -> [params]` and a
`SNAPSHOT_ORDER` (what makes devices comes before what uses them). Hosts with the same
tasks share a play. A task that takes `members` (a mesh) gets the hosts on which the
same module found the same name.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import yaml

from vnetctl.catalog import Catalog

Task = tuple[str, dict[str, Any]]  # module, params


def snapshot_modules(catalog: Catalog) -> list[str]:
    names = [n for n in catalog if hasattr(catalog.load(n), "snapshot")]
    return sorted(names, key=lambda n: (getattr(catalog.load(n), "SNAPSHOT_ORDER", 50), n))


def host_tasks(catalog: Catalog, facts: Mapping[str, Any]) -> list[Task]:
    seen = catalog.host_lib().Facts(facts)
    return [
        (name, params)
        for name in snapshot_modules(catalog)
        for params in catalog.load(name).snapshot(seen)
    ]


def fill_members(catalog: Catalog, tasks_by_host: dict[str, list[Task]]) -> None:
    holders: dict[tuple[str, str], list[str]] = defaultdict(list)
    for host, tasks in tasks_by_host.items():
        for module, params in tasks:
            if "members" in catalog[module]:
                holders[(module, params["name"])].append(host)
    for tasks in tasks_by_host.values():
        for module, params in tasks:
            if "members" in catalog[module]:
                params["members"] = ",".join(sorted(holders[(module, params["name"])]))


def build_playbook(catalog: Catalog, tasks_by_host: dict[str, list[Task]]) -> list[dict]:
    fill_members(catalog, tasks_by_host)
    groups: dict[str, list[str]] = defaultdict(list)
    for host in sorted(tasks_by_host):
        key = yaml.safe_dump(tasks_by_host[host], sort_keys=True)
        groups[key].append(host)
    plays = []
    for hosts in sorted(groups.values()):
        tasks = tasks_by_host[hosts[0]]
        plays.append(
            {
                "name": f"network of {', '.join(hosts)}",
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
    return f"{kind} {params.get('name', '')}".strip()


def to_yaml(plays: list[dict], hosts: list[str], errors: Mapping[str, str]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    header = [
        f"# Snapshot of {len(hosts)} host(s) taken by `vnetctl snapshot` at {when}.",
        "# Applied to the same hosts it plans nothing; edit names and addresses for a new site.",
    ]
    header += [f"# NOT INCLUDED: {host}: {reason}" for host, reason in sorted(errors.items())]
    body = yaml.safe_dump(plays, sort_keys=False, default_flow_style=None, width=100)
    return "\n".join(header) + "\n" + body
