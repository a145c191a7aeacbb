"""`vnetctl trace`'s static answer: the hosts' state read once (the facts module, one
session per host), SRC and DST found in it, the kernel's and OVS's own lookups for the
frame on the hosts it crosses (path_trace, a second short session on those hosts), and
the hops from the source port to the destination's, the first drop named."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.execute import execute, read_facts
from vnetctl.playbook.adhoc import adhoc_plan
from vnetctl.trace import ovs_layers
from vnetctl.trace.endpoints import Endpoint, resolve
from vnetctl.trace.hostview import HostView, lib
from vnetctl.trace.layers import (
    Packet,
    fdb_hop,
    hop,
    port_hop,
    security_hop,
    tc_hop,
    vlan_hop,
)
from vnetctl.trace.overlay import (
    decap_hop,
    encap_hop,
    missing,
    mtu_hop,
    remote_vtep,
    underlay_hop,
    vxlan_device,
)

SCHEMA = "vnetctl.trace/1"
MODULE = "path_trace"


def trace(run: RunContext, hosts: Sequence[str], src: str, dst: str,
          options: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The trace document (docs/schemas/trace.schema.json), with "errors" and
    "timing" beside it; InputError when SRC or DST cannot be found."""
    clock = time.monotonic()
    facts, errors, _ = read_facts(run, list(hosts))
    views = {h: HostView(h, d, run.catalog.facts(d)) for h, d in facts.items()}
    if not views:
        raise InputError("no host's state could be read: " + "; ".join(
            f"{h}: {why}" for h, why in sorted(errors.items())))  # fmt: skip
    source, target = resolve(src, views), resolve(dst, views)
    pkt = packet(source, target, options, views[source.host].mtu(source.port))
    read = time.monotonic()
    errors.update(lookup(run, views, plan_lookups(views, source, target, pkt)))
    hops = walk(views, source, target, pkt)
    dropped = next((i for i, h in enumerate(hops) if h["decision"] == "drop"), None)
    unknown = any(h["decision"] == "unknown" for h in hops)
    verdict = "dropped" if dropped is not None else "unknown" if unknown else "delivered"
    return {"schema": SCHEMA, "source": source.to_dict(), "destination": target.to_dict(),
            "packet": pkt.to_dict(), "verdict": verdict, "dropped_at": dropped, "hops": hops,
            "probe": None, "errors": errors,
            "timing": {"facts_s": round(read - clock, 3),
                       "total_s": round(time.monotonic() - clock, 3)}}  # fmt: skip


def packet(src: Endpoint, dst: Endpoint, options: dict[str, Any], src_mtu: int | None) -> Packet:
    vlan = options.get("vlan") or src.vlan
    size = options.get("size") or src_mtu or 1500  # default: the largest the source sends
    return Packet(options.get("proto"), options.get("port"), vlan, size,
                  src.mac, dst.mac, src.ip, dst.ip)  # fmt: skip


def plan_lookups(views: dict[str, HostView], src: Endpoint, dst: Endpoint,
                 pkt: Packet) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """{host: [path_trace lookup]}: only validated values reach them (the host module
    validates them again)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for ep in (src, dst):
        view, mine = views[ep.host], out.setdefault(ep.host, [])
        if ep.dataplane == "linux" and pkt.dst_mac and ep.bridge:
            fdb = {"kind": "fdb", "bridge": ep.bridge, "mac": pkt.dst_mac}
            if pkt.vlan and view.vlan_filtering(ep.bridge):
                fdb["vlan"] = pkt.vlan
            if fdb not in mine:
                mine.append(fdb)
        for device, classes in sorted(((view.data.get("tc") or {}).get("classes") or {}).items()):
            if classes and {"kind": "tc", "device": device} not in mine:
                mine.append({"kind": "tc", "device": device})
    if src.host != dst.host:
        vx = vxlan_device(views[dst.host], dst.bridge, dst.dataplane)
        remote = remote_vtep(views[dst.host], vx["vni"]) if vx else None
        if remote:
            out[src.host].append({"kind": "route", "address": remote})
    ovs_layers.plan(views, src, dst, pkt, out)
    return out


def lookup(run: RunContext, views: dict[str, HostView], plans: dict[str, list]) -> dict:
    """Run the lookups; each host's answers into its view, keyed as layers ask."""
    wanted = {h: p for h, p in plans.items() if p}
    if not wanted:
        return {}
    check = lib("vnet_core")  # nothing unchecked goes down: names as the kernel takes them
    for items in wanted.values():
        for item in items:
            for key in ("bridge", "device"):
                if item.get(key) and check.ifname_problem(item[key]):
                    raise InputError(f"{item[key]!r}: {check.ifname_problem(item[key])}")
    plays = [adhoc_plan(MODULE, {"lookups": items}, [h], name="trace lookups")
             for h, items in sorted(wanted.items())]  # fmt: skip
    outcome = execute(plays, run)
    errors = dict(outcome.unreachable)
    for result in outcome.results:
        answers = result.data.get("lookups")
        if answers is None:
            errors.setdefault(result.host, f"{result.status.value}: {result.msg}")
            continue
        for item, answer in zip(wanted[result.host], answers, strict=False):
            views[result.host].lookups[key_of(item)] = answer
    return errors


def key_of(item: dict[str, Any]) -> tuple:
    kind = item["kind"]
    if kind == "route":
        return ("route", item["address"])
    if kind == "tc":
        return ("tc", item["device"])
    return (kind, item["bridge"])


def walk(views: dict[str, HostView], src: Endpoint, dst: Endpoint, pkt: Packet) -> list[dict]:
    """Every hop in order; the walk stops at the first drop (the frame goes no further)."""
    hops: list[dict[str, Any]] = []

    def add(*found: dict | None) -> bool:
        hops.extend(h for h in found if h is not None)
        return not any(h["decision"] == "drop" for h in hops)

    S, D = views[src.host], views[dst.host]
    same = src.host == dst.host and src.bridge == dst.bridge
    vx = None if same else vxlan_device(S, src.bridge, src.dataplane) if src.bridge else None
    far = None if same or not dst.bridge else vxlan_device(D, dst.bridge, dst.dataplane)
    if vx is None and far is not None and src.bridge:  # the destination is over VXLAN
        vx = missing(S, src.bridge, src.dataplane, far)
    out_port = dst.port if same else (vx or {}).get("port") or (vx or {}).get("name")
    if not add(port_hop(S, src, pkt, leaving=False)):
        return hops
    if src.bridge is None:
        add(
            hop(
                S.name,
                "bridge",
                src.port,
                "unknown",
                f"{src.port} is a port of no bridge: the path beyond it is not traced",
            )
        )
        return hops
    if src.dataplane == "ovs":
        if not add(*ovs_layers.source_side(S, src, pkt, out_port, same)):
            return hops
    elif not add(
        vlan_hop(S, src.bridge, src.port, pkt, True),
        security_hop(S, src.port, pkt, True),
        fdb_hop(S, src.bridge, pkt, out_port),
    ):
        return hops
    if not same and vx is not None and not cross(S, D, src, dst, vx, pkt, add):
        return hops
    if not same and vx is None and src.dataplane != "ovs":
        add(
            hop(
                S.name,
                "bridge",
                src.bridge,
                "unknown",
                f"{dst.host} is reached by "
                f"{src.bridge}'s uplink, which this trace does not follow on a Linux bridge",
            )
        )
        return hops
    if dst.dataplane == "ovs":
        add(*ovs_layers.destination_side(D, dst, pkt, src.host))
        return hops
    if add(
        vlan_hop(D, dst.bridge, dst.port, pkt, False),
        security_hop(D, dst.port, pkt, False),
        tc_hop(D, dst.port, pkt),
    ):
        add(port_hop(D, dst, pkt, leaving=True))
    return hops


def cross(S: HostView, D: HostView, src: Endpoint, dst: Endpoint, vx: dict | None,
          pkt: Packet, add) -> bool:  # fmt: skip
    """From the source host's bridge over VXLAN into the destination's bridge."""
    linux = src.dataplane == "linux"
    dvx = vxlan_device(D, dst.bridge, dst.dataplane) if dst.bridge else None
    remote = remote_vtep(D, vx["vni"]) if vx else None
    if linux and vx and not add(vlan_hop(S, src.bridge, vx["name"], pkt, False),
                                tc_hop(S, vx["name"], pkt)):  # fmt: skip
        return False
    if not add(encap_hop(S, vx, remote, pkt)):
        return False
    under, dev = underlay_hop(S, remote)
    if not add(under, tc_hop(S, dev, pkt) if dev else None):
        return False
    overlay = [d for d in (src.port, src.bridge, vx.get("name") if linux else None) if d]
    tunnel = None if linux else vx.get("name") or (vx.get("by_remote") or {}).get(remote)
    # a trunk tunnel port (no tag) carries the frame's VLAN as an 802.1Q tag inside VXLAN
    tagged = bool(tunnel and pkt.vlan and not isinstance(S.ovs_port(tunnel).get("tag"), int))
    if not add(mtu_hop(S, overlay, dev, remote, pkt, tagged)):
        return False
    if not add(decap_hop(D, dvx, vx["vni"], vx["local"])):
        return False
    if dst.dataplane == "linux":
        return add(vlan_hop(D, dst.bridge, dvx["name"], pkt, True),
                   fdb_hop(D, dst.bridge, pkt, dst.port))  # fmt: skip
    return True
