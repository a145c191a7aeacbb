"""VMs found on the hosts themselves, merged with those declared.

Each host's facts hold the NICs of the domains its libvirt runs (`libvirt_nics`, read
from libvirt's status files: vnet_guests): domain, MAC, tap, bridge, port group and the
domain's vnetctl metadata. A NIC on the task's bridge is a VM of that host: named by its
domain, with its MAC, tap, port group and metadata. Declared VMs (the `vms` argument)
win field by field, by MAC: their addresses, metadata and port group; what a declared
VM leaves unset, the host's answer fills. libvirt does not know a guest's addresses: a
VM only found on its host has none, so it is a member by MAC (its own rules apply) but
no peer address in other groups' rules until its addresses are declared."""

from __future__ import annotations

from typing import Any


def found(host_facts: Any, bridge: str | None) -> list[dict]:
    """The VMs the host's libvirt runs with a NIC on `bridge`: [{name, mac, port,
    port_group, metadata}], in the facts' order (none from an unreachable host)."""
    if not isinstance(host_facts, dict) or not bridge:
        return []
    out = []
    for nic in host_facts.get("libvirt_nics") or []:
        if not nic.get("mac") or nic.get("bridge") != bridge:
            continue
        vm = {"name": nic["domain"], "mac": nic["mac"].lower(), "discovered": True}
        if nic.get("dev"):
            vm["port"] = nic["dev"]
        if nic.get("port_group"):
            vm["port_group"] = nic["port_group"]
        if nic.get("metadata"):
            vm["metadata"] = dict(nic["metadata"])
        out.append(vm)
    return out


def fleet(declared: dict[str, list[dict]], facts: dict, bridges: dict[str, str]) -> dict:
    """{host: VMs}: each host's declared VMs merged with those its libvirt runs on the
    task's bridge. A MAC declared anywhere is the declared VM's (a VM declared on one
    host and found on another keeps its declaration), and a MAC found on two hosts (a
    migration under way) is the first's."""
    where = {str(vm.get("mac", "")).lower(): h for h, vms in declared.items() for vm in vms}
    out = {}
    for host, vms in declared.items():
        mine = [vm for vm in found(facts.get(host), bridges.get(host))
                if where.setdefault(vm["mac"], host) == host]  # fmt: skip
        out[host] = merged(vms, mine)
    return out


def merged(declared: list[dict], discovered: list[dict]) -> list[dict]:
    """Declared VMs (each over what its host says of its MAC), then the VMs only found."""
    by_mac = {vm["mac"]: vm for vm in discovered}
    out = [{**_without_flag(by_mac.get(str(vm.get("mac", "")).lower(), {})), **vm}
           for vm in declared]  # fmt: skip
    known = {str(vm.get("mac", "")).lower() for vm in declared}
    return out + [vm for vm in discovered if vm["mac"] not in known]


def _without_flag(vm: dict) -> dict:
    return {k: v for k, v in vm.items() if k != "discovered"}


def peers_without_addresses(groups: list[dict], members: dict) -> list[str]:
    """Sentences, one per group named as a peer that holds VMs only found on their host
    (no addresses): rules naming it do not reach those VMs."""
    peers = {p for g in groups for d in ("ingress", "egress") for r in g.get(d) or []
             for p in r.get("from") or r.get("to") or []}  # fmt: skip
    out = []
    for name in (g["name"] for g in groups if g["name"] in peers):
        bare = [f"{vm['name']} ({host})" for host, vm in members.get(name) or []
                if vm.get("discovered") and not vm.get("addresses")]  # fmt: skip
        if bare:
            out.append(f"security groups: group {name!r} holds VMs found on their hosts "
                       f"without declared addresses ({', '.join(bare)}): its members by "
                       "MAC, but rules naming it as a peer do not reach them until their "
                       "addresses are declared in `vms`")  # fmt: skip
    return out
