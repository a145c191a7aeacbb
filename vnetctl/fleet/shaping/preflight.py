"""The checks of `traffic_shaping` tasks across the run (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vnetctl.catalog import Catalog, Refused
from vnetctl.errors import InputError
from vnetctl.fleet.expanders import Expansion
from vnetctl.playbook.model import Task
from vnetctl.playbook.render import HostTask, PlayPlan
from vnetctl.secrets import redact

MODULE = "traffic_shaping"
Found = tuple[PlayPlan, str, HostTask]  # plan, host, task


async def preflight(expansion: Expansion, plans: list[PlayPlan]) -> list[PlayPlan]:
    """`plans` unchanged, or InputError listing every problem with its file:line."""
    found = list(shaping_tasks(plans))
    if not found:
        return plans
    problems = two_policies(found)
    if expansion.preflight:
        facts = await expansion.facts(sorted({host for _, host, _ in found}))
        problems += members_shaped_twice(found, facts)
        problems += planned(found, plans, facts, expansion.run.catalog)
    if problems:
        listed = "\n  ".join(problems)
        raise InputError(redact(f"traffic shaping refused before any change:\n  {listed}"))
    return plans


def shaping_tasks(plans: list[PlayPlan]) -> Iterator[Found]:
    for plan in plans:
        for host, tasks in plan.tasks.items():
            for task in tasks:
                if task.module == MODULE:
                    yield plan, host, task


def declared(plan: PlayPlan, task: HostTask) -> Task:
    return next(t for t in plan.play.tasks if t.index == task.index)


def where(plan: PlayPlan, task: HostTask, argument: str | None = None) -> str:
    return f"{declared(plan, task).where_of(argument)}: {plan.play.context(declared(plan, task))}"


def two_policies(found: list[Found]) -> list[str]:
    """One device of one host, shaped by two tasks of the run: they would undo each other."""
    first: dict[tuple[str, str], tuple[PlayPlan, HostTask]] = {}
    problems = []
    for plan, host, task in found:
        device = task.args.get("name")
        earlier = first.setdefault((host, device), (plan, task))
        if earlier != (plan, task):
            problems.append(
                f"{where(plan, task, 'name')}: host {host}: {device} has two shaping policies: "
                f"this task and the one at {where(*earlier, 'name')}"
            )
    return problems


def members_shaped_twice(found: list[Found], facts: dict) -> list[str]:
    """A device shaped by its own task and as a member of an OVS port (`ovs: true`) the
    host's facts say it is in: the two would undo each other."""
    problems = []
    for plan, host, task in found:
        host_facts = facts.get(host)
        ports = host_facts.get("ovs_ports") if isinstance(host_facts, dict) else None
        port = task.args.get("name")
        if not task.args.get("ovs") or port not in (ports or {}):
            continue
        members = ports[port]["interfaces"]
        for other_plan, other_host, other in found:
            device = other.args.get("name")
            if other_host == host and not other.args.get("ovs") and device in members:
                problems.append(
                    f"{where(other_plan, other, 'name')}: host {host}: {device} has two shaping "
                    f"policies: this task and the one at {where(plan, task, 'name')} (a member "
                    f"of Open vSwitch port {port})"
                )
    return problems


def planned(found: list[Found], plans: list[PlayPlan], facts: dict, catalog: Catalog) -> list[str]:
    """Each task planned as its host will plan it, on its facts; what is refused, at its
    line."""
    hosts_by_problem: dict[tuple[str, str], list[str]] = {}
    for plan, host, task in found:
        host_facts = facts.get(host)
        if not isinstance(host_facts, dict):
            continue  # unreachable: the run itself reports it
        seen = catalog.facts(host_facts)
        device = task.args.get("name")
        if seen.link(device) is None and made_earlier(plans, plan, host, task, device):
            continue
        try:
            catalog.plan(MODULE, task.args, seen)
        except Refused as exc:
            at = where(plan, task, exc.argument)
            hosts_by_problem.setdefault((at, str(exc)), []).append(host)
    return [f"{at}: {_hosts(hosts)}: {text}" for (at, text), hosts in hosts_by_problem.items()]


def _hosts(hosts: list[str], shown: int = 5) -> str:
    """ "host a", "hosts a, b" or "hosts a, b, c, d, e and 45 more": one line per problem."""
    if len(hosts) == 1:
        return f"host {hosts[0]}"
    more = f" and {len(hosts) - shown} more" if len(hosts) > shown else ""
    return f"hosts {', '.join(hosts[:shown])}{more}"


def made_earlier(
    plans: list[PlayPlan], plan: PlayPlan, host: str, task: HostTask, device: str
) -> bool:
    """Whether a task that runs before `task` on `host` names `device` (it may make it)."""
    for other in plans:
        for earlier in other.tasks.get(host, []):
            if other is plan and earlier.index >= task.index:
                break
            if earlier.module != MODULE and _mentions(earlier.args, device):
                return True
        if other is plan:
            return False
    return False


def _mentions(value: Any, device: str) -> bool:
    """`device` among the values (a bridge's name), or a number naming it (a VNI: the
    mesh's device vxlanVNI). Mentioned wrongly only costs the controller's check."""
    if isinstance(value, dict):
        return any(_mentions(v, device) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, device) for v in value)
    return value == device or (isinstance(value, int) and f"vxlan{value}" == device)
