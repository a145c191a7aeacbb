"""A snapshot's meshes keep their members as the hosts have them.

One host's live state knows its mesh's peers by address, not by name. The members of
a snapshotted mesh are the snapshotted hosts that carry it and every host whose VTEP
address is among their peers: found first among the snapshotted hosts, then by the
inventory's addresses, then in the facts of the other inventory hosts (read-only). A
snapshot of part of a fleet (--limit) therefore re-applies without removing a peer."""

from __future__ import annotations

from typing import Any

from vnetctl.fleet.expanders import Expansion, SnapshotTasks
from vnetctl.fleet.mesh.expand import MODULE


def _addresses(facts: dict) -> set[str]:
    return {a["local"] for e in facts.get("addrs", []) for a in e.get("addr_info", [])}


def _live(expansion: Expansion, facts: dict, params: dict) -> dict:
    query = {"name": params["name"], "dataplane": params.get("dataplane", "linux")}
    return expansion.run.catalog.read(MODULE, query, facts)


async def snapshot_members(expansion: Expansion, tasks: SnapshotTasks) -> SnapshotTasks:
    meshes: dict[str, dict[str, Any]] = {}  # mesh -> {"holders": [...], "local": {}, ...}
    facts = await expansion.facts(list(tasks))
    for host, host_tasks in tasks.items():
        for module, params in host_tasks:
            if module != MODULE:
                continue
            mesh = meshes.setdefault(params["name"], {"holders": [], "wanted": set()})
            mesh["holders"].append(host)
            for segment in _live(expansion, facts[host], params)["segments"].values():
                mesh["wanted"].update(segment.get("peers") or [])
    if not meshes:
        return tasks
    owner = await _address_owners(
        expansion, facts, {a for m in meshes.values() for a in m["wanted"]}
    )
    out: SnapshotTasks = {}
    for host, host_tasks in tasks.items():
        out[host] = []
        for module, params in host_tasks:
            if module == MODULE:
                mesh = meshes[params["name"]]
                found = {owner[a] for a in mesh["wanted"] if a in owner}
                for address in sorted(a for a in mesh["wanted"] if a not in owner):
                    unplaced = "matches no inventory host that could be read"
                    expansion.leave_out(host, f"mesh {params['name']!r}: peer {address} {unplaced}")
                members = sorted(set(mesh["holders"]) | found)
                params = {**params, "members": ",".join(members)}
            out[host].append((module, params))
    return out


async def _address_owners(expansion: Expansion, facts: dict, wanted: set[str]) -> dict[str, str]:
    """address -> inventory host, for each wanted address that can be placed."""
    owner: dict[str, str] = {}
    for host, host_facts in facts.items():
        if isinstance(host_facts, dict):
            owner.update({a: host for a in _addresses(host_facts) & wanted})
    run = expansion.run
    for host in run.inventory.hosts:
        address = run.spec(host).address
        if address in wanted:
            owner.setdefault(address, host)
    others = [h for h in run.inventory.hosts if h not in facts]
    if others and wanted - set(owner):
        for host, host_facts in (await expansion.facts(others)).items():
            if isinstance(host_facts, dict):
                for address in _addresses(host_facts) & (wanted - set(owner)):
                    owner[address] = host
    return owner
