"""A one-task play built in code (no playbook file), for commands such as `facts`."""

from __future__ import annotations

from typing import Any

from vnetctl.errors import Location
from vnetctl.playbook.model import Play
from vnetctl.playbook.render import HostTask, PlayPlan


def adhoc_plan(module: str, args: dict[str, Any], hosts: list[str], name: str) -> PlayPlan:
    where = Location(f"<vnetctl {module}>")
    task = HostTask(index=0, name=name, module=module, args=args, where=where)
    play = Play(hosts=hosts, name=name, where=where)
    return PlayPlan(play=play, hosts=hosts, tasks={h: [task] for h in hosts})


def facts_plan(hosts: list[str]) -> PlayPlan:
    """Every fact source of `hosts`, read-only (`vnetctl facts`, and what the fleet's
    expanders and gates read)."""
    return adhoc_plan("facts", {"sources": "all"}, list(hosts), name="gather facts")
