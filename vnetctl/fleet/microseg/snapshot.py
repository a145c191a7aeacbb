"""A snapshot's security groups, as the hosts keep their declarations (the module's
document, vnet_sg_document): one task per policy with every snapshotted host's VMs, each
with its `host`, so that the task, run again on those hosts, resolves the same membership
and compiles the same rules. A host whose rules differ from its declaration is named
(drift) and its policy left out: the snapshot never declares what a host does not
enforce; its VMs stay in the list, as members and peers of the other hosts' rules."""

from __future__ import annotations

import json

from vnetctl.fleet.expanders import Expansion, SnapshotTasks

MODULE = "security_groups"
DRIFT = "drift"  # the module's snapshot() key (modules/security_groups.py)


def _key(params: dict) -> str:
    return json.dumps([params["name"], params["bridge"], params.get("groups")], sort_keys=True)


async def snapshot_groups(expansion: Expansion, tasks: SnapshotTasks) -> SnapshotTasks:
    fleet: dict[str, list[dict]] = {}
    for host, host_tasks in sorted(tasks.items()):
        for module, params in host_tasks:
            if module == MODULE:  # a drifted host's VMs are still the fleet's members
                vms = [dict(vm, host=host) for vm in params.get("vms") or []]
                fleet.setdefault(_key(params), []).extend(vms)
    out: SnapshotTasks = {}
    for host, host_tasks in tasks.items():
        out[host] = []
        for module, params in host_tasks:
            if module != MODULE:
                out[host].append((module, params))
            elif params.get(DRIFT):
                where = f"security groups {params['name']!r} on bridge {params['bridge']}"
                expansion.leave_out(host, f"{where}: {params[DRIFT]}; not written back")
            else:
                vms = sorted(fleet[_key(params)], key=lambda v: v["host"])  # stable
                out[host].append((module, {**params, "vms": vms}))
    return out
