"""Micro-segmentation across the fleet (`security_groups`): groups' members resolved
from every host of the play's VMs (also beyond --limit), and each host sent its own VMs'
policy, checked before any host is touched (see `resolve`)."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence

from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expander, Expansion
from vnetctl.fleet.microseg import discover, resolve, snapshot
from vnetctl.playbook.render import PlayPlan
from vnetctl.secrets import redact

MODULE = "security_groups"
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")


def _tasks(plans: Sequence[PlayPlan]) -> list[tuple[PlayPlan, int]]:
    found = []
    for plan in plans:
        indexes = {t.index for ts in plan.tasks.values() for t in ts if t.module == MODULE}
        found += [(plan, i) for i in sorted(indexes)]
    return found


def fleet_hosts(run: RunContext, plans: list[PlayPlan]) -> list[str]:
    """Every host of a play with security groups: their VMs are members too."""
    return [h.name for plan, _ in _tasks(plans) for h in run.inventory.select(plan.play.hosts)]


def _hosts_of(run: RunContext):
    cache: dict[str, set[str]] = {}

    def hosts_of(pattern: str) -> set[str]:
        if pattern not in cache:
            cache[pattern] = {h.name for h in run.inventory.select(pattern)}
        return cache[pattern]

    return hosts_of


async def expand_groups(expansion: Expansion, plans: list[PlayPlan]) -> list[PlayPlan]:
    run = expansion.run
    current = {id(p): p for p in plans}
    for plan, index in _tasks(plans):
        declared = next(t for t in plan.play.tasks if t.index == index)
        fleet = [h.name for h in run.inventory.select(plan.play.hosts)]
        args = run.render_for(plan.play, index, fleet)
        groups = _same_groups(args, declared)
        facts = await expansion.facts(fleet)
        declared_vms = {h: _own_vms(h, a.get("vms") or []) for h, a in args.items()}
        declared_vms.update(_beyond_play(args))
        vms_by_host = discover.fleet(
            declared_vms, facts, {h: a.get("bridge") for h, a in args.items()}
        )
        _unique_macs(vms_by_host, declared)
        try:
            resolve.check_groups(groups)
            hosts_of = _hosts_of(run)
            members = resolve.membership(groups, vms_by_host, hosts_of, _vars_of(run))
            for note in discover.peers_without_addresses(groups, members):
                print(redact(note), file=sys.stderr)
            tasks = {}
            rules = resolve.rules_of(groups, members)
            _check_compiled(run, groups, rules, declared)
            for host, host_tasks in current[id(plan)].tasks.items():
                tasks[host] = [
                    dataclasses.replace(t, args={**t.args, "ports": resolve.host_ports(
                        groups, members, host, vms_by_host.get(host, []), rules),
                        "templates": resolve.templates(groups, members, host, hosts_of, rules,
                                                   _vars_of(run)),
                        "declaration": redact({"groups": groups,
                                               "vms": declared_vms.get(host, [])})})
                    if t.module == MODULE and t.index == index else t
                    for t in host_tasks
                ]  # fmt: skip
        except resolve.Bad as exc:
            raise _refused(str(exc), declared, exc.argument) from None
        current[id(plan)] = dataclasses.replace(current[id(plan)], tasks=tasks)
    return [current[id(p)] for p in plans]


def _vars_of(run: RunContext):
    """A host's inventory variables (what `members: {vars: ...}` matches)."""
    return lambda host: run.inventory.hosts[host].vars if host in run.inventory.hosts else {}


def _own_vms(host: str, vms: list[dict]) -> list[dict]:
    """A host's VMs: those without `host`, and those whose `host` is it (a snapshot
    declares the whole fleet's VMs in one list, each with its host)."""
    return [{k: v for k, v in vm.items() if k != "host"} for vm in vms
            if vm.get("host") in (None, host)]  # fmt: skip


def _beyond_play(args: dict[str, dict]) -> dict[str, list[dict]]:
    """VMs declared with a `host` that is not of the play (a snapshot's, whose host was
    left out): members and peers, as VMs beyond --limit are; no task there."""
    out: dict[str, dict[str, dict]] = {}
    for rendered in args.values():
        for vm in rendered.get("vms") or []:
            host = vm.get("host")
            if host is not None and host not in args:
                mine = {k: v for k, v in vm.items() if k != "host"}
                out.setdefault(host, {})[str(vm.get("mac", "")).lower()] = mine
    return {host: list(vms.values()) for host, vms in out.items()}


def _check_compiled(run, groups: list[dict], rules: dict, declared) -> None:
    """Each group's resolved rules checked as a host will check them (vnet_microseg_ir;
    a host's policy is its VMs' groups' rules): a port out of range, an ICMP type of
    the other family, refused here with the task's line, before any host is touched."""
    ir = run.catalog.load(MODULE).microseg_ir
    for group in groups:
        port = {"mac": "02:00:00:00:00:00", "groups": [group["name"]], **rules[group["name"]]}
        try:
            ir.validate({"bridge": "br", "ports": [port]})
        except ir.Invalid as exc:
            why = str(exc).replace("microseg ports[0] ", "")
            raise _refused(f"group {group['name']!r} {why}", declared, "groups") from None


def _same_groups(args: dict[str, dict], declared) -> list[dict]:
    """The groups, as every host renders them: one policy for the fleet."""
    rendered = [a.get("groups") or [] for a in args.values()]
    if any(r != rendered[0] for r in rendered[1:]):
        raise _refused("groups render differently on different hosts (one policy for the "
                       "fleet: no host variables in groups)", declared, "groups")  # fmt: skip
    return rendered[0] if rendered else []


def _unique_macs(vms_by_host: dict[str, list[dict]], declared) -> None:
    seen: dict[str, str] = {}
    for host, vms in vms_by_host.items():
        for vm in vms:
            mac = str(vm.get("mac", "")).lower()
            if not MAC.match(mac):
                raise _refused(f"VM {vm.get('name')} (host {host}): mac {mac!r} is not a MAC "
                               "address (aa:bb:cc:dd:ee:ff)", declared, "vms")  # fmt: skip
            if mac in seen:
                both = f"VM {seen[mac]} and VM {vm.get('name')} (host {host})"
                raise _refused(f"MAC {mac} is declared for {both}: a VM runs on one host",
                               declared, "vms")  # fmt: skip
            seen[mac] = f"{vm.get('name')} (host {host})"


def _refused(message: str, declared, argument: str) -> InputError:
    return InputError(f"security groups: {message}", declared.where_of(argument),
                      f"task {declared.display_name!r}")  # fmt: skip


EXPANDERS = [
    Expander(
        module=MODULE, expand=expand_groups, reach=fleet_hosts, snapshot=snapshot.snapshot_groups
    )
]
