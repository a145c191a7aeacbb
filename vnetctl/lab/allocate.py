"""One allocator of lab names and subnets, so labs share a machine: the user's own, a test
run's, a second checkout's test run at the same time.

What is in use is read from the machine itself every time, under one lock
(LAB_ROOT/.allocate.lock): every lab record under LAB_ROOT (up or not), every network
namespace and link a lab's names would collide with, every IPv4 address and route. A lab
is reserved by writing its record (lab.json with no hosts yet) before the lock is let go,
so the next allocation sees it; `lab_up` builds on the record and `lab_down` removes it.

A lab made for a process (`owner`: a test run) is abandoned once that process is gone
(killed before its own clean-up ran): `lab.allocate_lab` removes such labs, by their own
names, before it reserves a new one.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vnetctl.errors import InputError
from vnetctl.lab.proc import LabError, run
from vnetctl.lab.state import (
    LAB_ROOT,
    LabState,
    bridge_names,
    load_state,
    save_state,
    state_dir,
    validate_name,
    validate_subnet,
)

# Where `--subnet auto` and the tests take subnets from: away from the default
# (10.213.0.0/16) and from the usual home, office and container ranges.
POOL = ipaddress.ip_network("10.200.0.0/13")
LOCK_FILE = LAB_ROOT / ".allocate.lock"
NAME_LENGTH = 6


@dataclass(frozen=True)
class UsedNetwork:
    """An IPv4 network something on this machine holds, and who."""

    network: ipaddress.IPv4Network
    where: str  # "10.213.0.1/16 on vnldemo-m", "the route to 10.9.0.0/16 (dev wg0)"
    lab: str | None = None  # the lab that holds it, when one does


@contextmanager
def allocation_lock() -> Iterator[None]:
    """Held while a name or subnet is chosen and its lab record written."""
    LAB_ROOT.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def recorded_labs() -> list[LabState]:
    """Every lab record under LAB_ROOT (unreadable ones are skipped)."""
    labs = []
    for entry in sorted(LAB_ROOT.glob("*/lab.json")):
        try:
            state = load_state(validate_name(entry.parent.name))
        except (InputError, ValueError, KeyError, TypeError):
            continue
        if state is not None:
            labs.append(state)
    return labs


def used_networks(labs: list[LabState] | None = None) -> list[UsedNetwork]:
    """Every IPv4 network held here: lab records, addresses, routes (all tables)."""
    labs = recorded_labs() if labs is None else labs
    bridge_owner = {bridge_names(lab.name)[0]: lab.name for lab in labs}
    used = [
        UsedNetwork(ipaddress.ip_network(lab.subnet), f"the record of lab {lab.name!r}", lab.name)
        for lab in labs
    ]
    for link in json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout):
        for addr in link.get("addr_info", []):
            prefix = f"{addr['local']}/{addr['prefixlen']}"
            net = ipaddress.ip_network(prefix, strict=False)
            owner = bridge_owner.get(link["ifname"])
            used.append(UsedNetwork(net, f"{prefix} on {link['ifname']}", owner))
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout):
        dst = route.get("dst")
        if dst in (None, "default") or route.get("type") in ("local", "broadcast"):
            continue  # local/broadcast entries are an address's own, listed above
        net = ipaddress.ip_network(dst, strict=False)
        owner = bridge_owner.get(route.get("dev", ""))
        where = f"the route to {dst} (dev {route.get('dev', '?')})"
        used.append(UsedNetwork(net, where, owner))
    return used


def subnet_conflict(
    subnet: ipaddress.IPv4Network, lab: str, used: list[UsedNetwork]
) -> UsedNetwork | None:
    """What holds part of `subnet` besides `lab` itself, or None."""
    for item in used:
        if item.lab != lab and item.network.overlaps(subnet):
            return item
    return None


def conflict_message(subnet: ipaddress.IPv4Network, conflict: UsedNetwork) -> str:
    if conflict.lab:
        return (
            f"subnet {subnet} overlaps lab {conflict.lab!r} ({conflict.where}): remove "
            f"that lab with `vnetctl lab down --name {conflict.lab}`, or choose another "
            "subnet with --subnet (--subnet auto takes a free one)"
        )
    return (
        f"subnet {subnet} overlaps {conflict.where}: choose another one with --subnet "
        "(--subnet auto takes a free one)"
    )


def free_subnet(hosts: int, used: list[UsedNetwork]) -> ipaddress.IPv4Network:
    """The first subnet of POOL, a /24 (larger for more hosts), that nothing holds."""
    for prefixlen in range(24, POOL.prefixlen - 1, -1):
        try:
            candidates = POOL.subnets(new_prefix=prefixlen)
            first = next(POOL.subnets(new_prefix=prefixlen))
            validate_subnet(str(first), hosts)
        except InputError:
            continue  # too small for this many hosts: the next size up
        for net in candidates:
            if not any(item.network.overlaps(net) for item in used):
                return net
    raise LabError(f"no free subnet for {hosts} hosts left in {POOL}")


def reserve(name: str, hosts: int, subnet: str | None, owner: int | None = None) -> LabState:
    """Write lab `name`'s record (no hosts yet) with `subnet`, checked free, or with a
    free one when `subnet` is None or "auto"; `owner`: the process it is made for."""
    validate_name(name)
    with allocation_lock():
        return _reserve(name, hosts, subnet, owner)


def reserve_free(prefix: str, hosts: int, owner: int) -> LabState:
    """Reserve a lab named `prefix` and a number, with a free subnet, for process `owner`."""
    with allocation_lock():
        name = free_name(prefix, recorded_labs())
        return _reserve(name, hosts, None, owner)


def _reserve(name: str, hosts: int, subnet: str | None, owner: int | None) -> LabState:
    """reserve(), the allocation lock held."""
    labs = recorded_labs()
    if any(lab.name == name for lab in labs):
        raise LabError(f"lab {name!r} exists already")
    used = used_networks(labs)
    if subnet in (None, "auto"):
        net = free_subnet(hosts, used)
    else:
        net = validate_subnet(subnet, hosts)
        conflict = subnet_conflict(net, name, used)
        if conflict:
            raise InputError(conflict_message(net, conflict))
    state = LabState(
        name=name,
        subnet=str(net),
        gateway=str(net.network_address + 1),
        state_dir=state_dir(name),
        bridges=bridge_names(name),
        owner=owner_id(owner) if owner else None,
    )
    save_state(state)
    return state


def free_name(prefix: str, labs: list[LabState]) -> str:
    """`prefix` followed by the smallest number no lab record, namespace or link uses."""
    validate_name(prefix)
    taken = {lab.name for lab in labs} | {path.name for path in LAB_ROOT.iterdir()}
    namespaces = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    links = {link["ifname"] for link in json.loads(run(["ip", "-j", "link", "show"]).stdout)}
    for number in range(1, 10 ** (NAME_LENGTH - len(prefix))):
        name = f"{prefix}{number}"
        if name in taken:
            continue
        if any(ns.startswith(f"vnl-{name}-") for ns in namespaces):
            continue
        if any(link.startswith(f"vnl{name}-") for link in links):
            continue
        return name
    raise LabError(f"no free lab name starting with {prefix!r}")


def owner_id(pid: int) -> dict[str, int]:
    """The process, by PID and start time (a PID alone may be reused)."""
    return {"pid": pid, "start": process_start(pid) or 0}


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return int(stat.rsplit(")", 1)[1].split()[19])


def owner_alive(owner: dict[str, int]) -> bool:
    return process_start(owner["pid"]) == owner["start"]


def abandoned_labs() -> list[LabState]:
    """Labs reserved for a process that is gone."""
    return [lab for lab in recorded_labs() if lab.owner and not owner_alive(lab.owner)]
