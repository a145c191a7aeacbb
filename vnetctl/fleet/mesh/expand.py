"""Fleet-level expansion of `vxlan_mesh` tasks: each member's `local` VTEP and its
`peers` come from the whole member group, not just the hosts of this run (--limit
must not shrink a mesh). Before any host is touched, every member is planned on the
controller with its gathered facts as its host will plan it (the host library's plan()):
a bad VNI, a missing VTEP or an underlay MTU too small is refused here, with host and
numbers."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import defaultdict
from collections.abc import Sequence

from vnetctl.catalog import Catalog, Refused
from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expansion
from vnetctl.playbook.render import PlayPlan
from vnetctl.secrets import redact

MODULE = "vxlan_mesh"


def mesh_tasks(plans: Sequence) -> list[tuple[object, int]]:
    found = []
    for plan in plans:
        indexes = {t.index for tasks in plan.tasks.values() for t in tasks if t.module == MODULE}
        found += [(plan, i) for i in sorted(indexes)]
    return found


def members_of(plans: Sequence, run: RunContext) -> dict[tuple[int, int], list[str]]:
    """(id(plan), task index) -> the mesh's members, whatever --limit selected."""
    members = {}
    for plan, index in mesh_tasks(plans):
        sample = next(t for ts in plan.tasks.values() for t in ts if t.index == index)
        pattern = sample.args.get("members") or plan.play.hosts
        members[(id(plan), index)] = [h.name for h in run.inventory.select(pattern)]
    return members


def member_hosts(run: RunContext, plans: list[PlayPlan]) -> list[str]:
    """Every mesh member, also outside --limit: their VTEPs are read for the peers."""
    return [h for members in members_of(plans, run).values() for h in members]


def interface_address(facts: dict, interface: str) -> str | None:
    for entry in facts.get("addrs", []):
        if entry.get("ifname") == interface:
            for addr in entry.get("addr_info", []):
                if addr.get("scope") == "global":
                    return addr["local"]
    return None


def has_interface(facts: dict, interface: str) -> bool:
    return any(link.get("ifname") == interface for link in facts.get("links", []))


class VtepUnknown(Exception):
    """Why a member has no VTEP address; `argument` is the task argument at fault."""

    def __init__(self, message: str, argument: str | None = None, unreachable: bool = False):
        super().__init__(message)
        self.argument = argument
        self.unreachable = unreachable


def member_vtep(host: str, args: dict, host_facts: dict | str | None, run: RunContext) -> str:
    """The member's VTEP: `vtep` as declared, else the address of the declared
    `vtep_interface` (which must exist and have one), else, only when neither is
    declared, its management address. A declared interface is never replaced."""
    if args.get("vtep"):
        return args["vtep"]
    interface = args.get("vtep_interface")
    if interface:
        if not isinstance(host_facts, dict):
            raise VtepUnknown(
                f"cannot read its vtep_interface {interface!r}: {host_facts}",
                "vtep_interface",
                unreachable=True,
            )
        if not has_interface(host_facts, interface):
            raise VtepUnknown(
                f"vtep_interface {interface!r} does not exist on this host", "vtep_interface"
            )
        address = interface_address(host_facts, interface)
        if not address:
            raise VtepUnknown(
                f"vtep_interface {interface!r} has no global address on this host",
                "vtep_interface",
            )
        return address
    address = _default_vtep(run, host)
    if not address:
        raise VtepUnknown(
            f"no VTEP address for mesh {args.get('name')!r}: declare vtep or vtep_interface "
            "(its management address is not an IP address)"
        )
    return address


def _default_vtep(run: RunContext, host: str) -> str | None:
    address = run.spec(host).address
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


async def expand_meshes(expansion: Expansion, plans: list[PlayPlan]) -> list[PlayPlan]:
    """New plans where each mesh task has its `local` and `peers`; with preflight, every
    member is also planned on the controller, refusing (InputError) what a host cannot do.

    A member whose VTEP cannot be read (unreachable) makes the mesh's peers unknown: an
    error, unless the expansion notes unchecked work (drift checks): then the mesh's
    tasks are left out and each host that had one says why."""
    tasks = mesh_tasks(plans)
    if not tasks:
        return plans
    run = expansion.run
    problems: list[str] = []
    members_by_task = members_of(plans, run)
    everyone = sorted(
        {h for members in members_by_task.values() for h in members}
        | {h for plan, _ in tasks for h in plan.hosts}
    )
    facts = await expansion.facts(everyone)
    filled: dict[tuple[int, int], dict[str, dict] | None] = {}  # None: left out
    for plan, index in tasks:
        members = members_by_task[(id(plan), index)]
        member_args = run.render_for(plan.play, index, members)
        declared = next(t for t in plan.play.tasks if t.index == index)
        vteps = {}
        unreadable: dict[str, str] = {}  # host -> problem
        for host in members:
            args = member_args.get(host) or {}
            try:
                vteps[host] = member_vtep(host, args, facts.get(host), run)
            except VtepUnknown as exc:
                at = declared.where_of(exc.argument)
                problem = f"host {host}: task {declared.display_name!r} ({at}): {exc}"
                if exc.unreachable:
                    unreadable[host] = problem
                else:
                    problems.append(problem)
        if unreadable and expansion.unchecked is None:
            problems += unreadable.values()
        elif unreadable:
            why = f"peers unknown: {', '.join(unreadable)} unreachable"
            filled[(id(plan), index)] = None
            for host, host_tasks in plan.tasks.items():
                for task in (t for t in host_tasks if t.index == index):
                    expansion.leave_out(host, f"mesh {task.args.get('name')!r} not checked: {why}")
            continue
        by_host = {}
        for host, host_tasks in plan.tasks.items():
            for task in (t for t in host_tasks if t.index == index):
                if host not in members:
                    problems.append(
                        f"host {host}: runs mesh {task.args['name']!r} but is not "
                        f"one of its members ({', '.join(members)})"
                    )
                    continue
                peers = sorted(v for h, v in vteps.items() if h != host and v)
                by_host[host] = {**task.args, "local": vteps.get(host), "peers": peers}
        filled[(id(plan), index)] = by_host
    expanded = [_with_args(plan, filled) for plan in plans]
    problems += _check_vni_per_host(expanded)
    if expansion.preflight:
        problems += _preflight(expanded, facts, run.catalog)
    if problems:
        listed = "\n  ".join(problems)
        raise InputError(redact(f"VXLAN mesh refused before any change:\n  {listed}"))
    return expanded


def _with_args(plan: PlayPlan, filled: dict) -> PlayPlan:
    """A copy of `plan` with the mesh tasks' new arguments (tasks left out dropped)."""
    tasks = {}
    for host, host_tasks in plan.tasks.items():
        kept = []
        for task in host_tasks:
            key = (id(plan), task.index)
            if key not in filled:
                kept.append(task)
            elif filled[key] is not None and host in filled[key]:
                kept.append(dataclasses.replace(task, args=filled[key][host]))
        tasks[host] = kept
    return dataclasses.replace(plan, tasks=tasks)


def _check_vni_per_host(plans: Sequence) -> list[str]:
    problems = []
    for plan in plans:
        for host, host_tasks in plan.tasks.items():
            owner: dict[int, str] = {}
            for task in (t for t in host_tasks if t.module == MODULE):
                for seg in task.args.get("segments") or []:
                    vni, mesh = seg.get("vni"), task.args["name"]
                    if owner.setdefault(vni, mesh) != mesh:
                        problems.append(
                            f"host {host}: VNI {vni} is in both mesh "
                            f"{owner[vni]!r} and mesh {mesh!r}"
                        )
    return problems


def _preflight(plans: Sequence, facts: dict, catalog: Catalog) -> list[str]:
    """Each member's task planned on the controller as its host will plan it, on its
    gathered facts (not for a host without a VTEP: why it has none is reported already)."""
    problems = []
    for plan in plans:
        for host, host_tasks in plan.tasks.items():
            host_facts = facts.get(host)
            if not isinstance(host_facts, dict):
                continue  # unreachable: reported as such by the run itself
            for task in (t for t in host_tasks if t.module == MODULE and t.args.get("local")):
                planned = _with_planned_mtus(host_facts, host_tasks, task.index)
                planned = _with_planned_addresses(planned, host_tasks, task.index, catalog)
                try:
                    catalog.plan(MODULE, task.args, planned)
                except Refused as exc:
                    problems.append(f"host {host}: {exc} ({task.where})")
    return problems


def _with_planned_mtus(facts: dict, host_tasks: list, before: int) -> dict:
    """Facts as they will be when the mesh task runs: MTUs raised by earlier `link`
    tasks of the same play count (raise the underlay and build the overlay in one run).
    Earlier in the host's stream, not by index: a loop item's index is not its place."""
    planned = defaultdict(int)
    for task in host_tasks:
        if task.index == before:
            break
        if task.module == "link" and task.args.get("mtu"):
            planned[task.args["name"]] = task.args["mtu"]
    links = [dict(link, mtu=planned.get(link["ifname"]) or link["mtu"]) for link in facts["links"]]
    addrs = [dict(a, mtu=planned.get(a["ifname"]) or a["mtu"]) for a in facts["addrs"]]
    return dict(facts, links=links, addrs=addrs)


def _with_planned_addresses(facts: dict, host_tasks: list, before: int, catalog: Catalog) -> dict:
    """Facts with the addresses earlier tasks of the play give (a module's optional
    `planned_addresses(params) -> {device: {"addresses": [cidr], "mtu": n}}`, e.g. an OVS
    bridge declared to hold the VTEP address): declare the underlay and the mesh in one run."""
    addrs = [dict(a, addr_info=list(a.get("addr_info", []))) for a in facts["addrs"]]
    for task in (t for t in host_tasks if getattr(t, "result", None) is None):  # no verbs
        hook = getattr(catalog.load(task.module), "planned_addresses", None)
        if task.index >= before or hook is None:
            continue
        for device, planned in hook(task.args).items():
            entry = next((a for a in addrs if a["ifname"] == device), None)
            if entry is None:
                entry = {"ifname": device, "mtu": planned["mtu"], "addr_info": []}
                addrs.append(entry)
            for cidr in planned["addresses"]:
                local, _, prefix = cidr.partition("/")
                entry["addr_info"].append(
                    {"local": local, "prefixlen": int(prefix or 32), "scope": "global"}
                )
    return dict(facts, addrs=addrs)
