"""The overlay's layers: the VXLAN device (VNI, the remote VTEP its fdb sends to), the
underlay route to that VTEP (`ip route get`), MTU with the encapsulation's overhead,
and the decapsulation on the other host."""

from __future__ import annotations

from typing import Any

from vnetctl.trace.hostview import HostView
from vnetctl.trace.layers import (
    VLAN_TAG,
    VXLAN_IPV4_OVERHEAD,
    VXLAN_IPV6_OVERHEAD,
    Packet,
    hop,
)

ZERO_MAC = "00:00:00:00:00:00"


def vxlan_device(view: HostView, bridge: str, dataplane: str) -> dict[str, Any] | None:
    """{"name", "vni", "local", "underlay", "mtu", "remotes"} of the bridge's VXLAN port
    (a Linux vxlan device, or an OVS tunnel interface), or None."""
    if dataplane == "linux":
        for name in view.vxlan_ports(bridge):
            dev = view.net.device(name)
            return {"name": name, "vni": dev.info.get("id"), "local": dev.info.get("local"),
                    "underlay": dev.info.get("link"), "mtu": dev.mtu,
                    "remotes": view.vteps(name), "up": view.is_up(name)}  # fmt: skip
        return None
    by_remote, vni, local = {}, None, None
    for name, row in tunnels(view, bridge).items():
        options = row.get("options") or {}
        vni, local = _vni(options.get("key")), options.get("local_ip")
        by_remote[options.get("remote_ip")] = name
    if not by_remote:
        return None
    return {
        "name": None,
        "vni": vni,
        "local": local,
        "underlay": None,
        "mtu": None,
        "remotes": sorted(r for r in by_remote if r),
        "up": True,
        "by_remote": by_remote,
    }


def tunnels(view: HostView, bridge: str) -> dict[str, dict[str, Any]]:
    """{interface: its OVSDB row} of an OVS bridge's VXLAN ports (the `ovs` fact)."""
    interfaces = (view.data.get("ovs") or {}).get("interfaces") or {}
    members = [i for p in view.net.ovs_ports(bridge).values() for i in p]
    return {n: interfaces[n] for n in members if (interfaces.get(n) or {}).get("type") == "vxlan"}


def _vni(key: Any) -> Any:
    return int(key) if str(key).isdigit() else key


def missing(view: HostView, bridge: str, dataplane: str, far: dict[str, Any]) -> dict:
    """The source bridge's VXLAN side when it has no VXLAN port at all while the
    destination's bridge has one: every peer missing."""
    return {"name": None, "vni": far["vni"], "local": None, "underlay": None, "mtu": None,
            "remotes": [], "up": True, "by_remote": {} if dataplane == "ovs" else None,
            "bridge": bridge}  # fmt: skip


def remote_vtep(view: HostView, vni: Any) -> str | None:
    """The destination host's VTEP for `vni`: its VXLAN device's local address, else
    the address its underlay holds."""
    for _name, dev in view.net.devices.items():
        if dev.kind == "vxlan" and dev.info.get("id") == vni:
            return dev.info.get("local")
    interfaces = (view.data.get("ovs") or {}).get("interfaces") or {}
    for row in interfaces.values():
        options = row.get("options") or {}
        if row.get("type") == "vxlan" and _vni(options.get("key")) == vni:
            return options.get("local_ip")
    return None


def encap_hop(view: HostView, vx: dict[str, Any] | None, remote: str | None,
              pkt: Packet) -> dict[str, Any]:  # fmt: skip
    host = view.name
    if vx is None:
        return hop(host, "vxlan", None, "drop", "the destination is on another host and the "
                   "bridge has no VXLAN port")  # fmt: skip
    name = vx["name"] or (vx.get("by_remote") or {}).get(remote) or "-"
    detail = {"vni": vx["vni"], "local": vx["local"], "remote": remote, "remotes": vx["remotes"]}
    if not vx["up"]:
        return hop(host, "vxlan", name, "drop", f"{name} (VNI {vx['vni']}) is down", **detail)
    if remote is None:
        return hop(
            host,
            "vxlan",
            name,
            "drop",
            f"the destination host has no VXLAN device for VNI {vx['vni']}",
            **detail,
        )
    if remote not in vx["remotes"]:
        have = ", ".join(vx["remotes"]) or "none"
        if vx.get("by_remote") is not None or vx["name"] is None:  # OVS: a port per peer
            return hop(host, "vxlan", name, "drop",
                       f"VNI {vx['vni']}: no tunnel port on {vx.get('bridge')} to VTEP "
                       f"{remote} (peer missing; its peers: {have})", setting="remote_ip",
                       **detail)  # fmt: skip
        return hop(host, "vxlan", name, "drop",
                   f"VNI {vx['vni']}: no fdb entry on {name} to VTEP {remote} (peer missing; "
                   f"its peers: {have})", setting="fdb", **detail)  # fmt: skip
    return hop(
        host,
        "vxlan",
        name,
        "encapsulate",
        f"VNI {vx['vni']} from {vx['local']} to VTEP {remote}",
        **detail,
    )


def underlay_hop(view: HostView, remote: str) -> tuple[dict[str, Any], str | None]:
    """The kernel's route to the remote VTEP (`ip route get`): (hop, its device)."""
    found = view.lookups.get(("route", remote)) or {}
    routes = found.get("answer") or []
    if not routes:
        why = found.get("error") or "no answer"
        return hop(view.name, "underlay", None, "drop",
                   f"no route to VTEP {remote}: {why}", remote=remote), None  # fmt: skip
    route = routes[0]
    dev = route.get("dev")
    via = f" via {route['gateway']}" if route.get("gateway") else ""
    kind = route.get("type")
    if kind in ("unreachable", "prohibit", "blackhole"):
        return hop(view.name, "underlay", dev, "drop",
                   f"route to VTEP {remote} is {kind}", route=route), None  # fmt: skip
    return hop(view.name, "underlay", dev, "forward",
               f"route to VTEP {remote}{via} dev {dev} src {route.get('prefsrc')}",
               route=route), dev  # fmt: skip


def mtu_hop(view: HostView, overlay: list[str], underlay: str | None, remote: str,
            pkt: Packet, tagged: bool = False) -> dict[str, Any]:  # fmt: skip
    """MTU along the host's part of the path: each overlay device must take the packet,
    the underlay device the packet and the encapsulation (with the 802.1Q tag the inner
    frame carries when `tagged`); the largest that passes."""
    overhead = VXLAN_IPV6_OVERHEAD if ":" in remote else VXLAN_IPV4_OVERHEAD
    overhead += VLAN_TAG if tagged else 0
    mtus = {d: view.mtu(d) for d in overlay if view.mtu(d) is not None}
    egress = view.egress_mtus(underlay) if underlay else {}
    if egress:  # the narrowest device the frame may leave by names the hop
        underlay = min(egress, key=lambda d: (egress[d], d))
    under = egress.get(underlay)
    limits = list(mtus.values()) + ([under - overhead] if under else [])
    largest = min(limits) if limits else None
    detail = {"mtus": mtus, "underlay": underlay, "underlay_mtu": under, "overhead": overhead,
              "largest": largest, "size": pkt.size, "egress": egress}  # fmt: skip
    for dev, mtu in mtus.items():
        if pkt.size > mtu:
            return hop(view.name, "mtu", dev, "drop",
                       f"{dev} MTU {mtu} < packet {pkt.size}; largest that passes: {largest}",
                       setting="mtu", **detail)  # fmt: skip
    if under is not None and pkt.size + overhead > under:
        return hop(view.name, "mtu", underlay, "drop",
                   f"{underlay} MTU {under} < {pkt.size} + {overhead} = {pkt.size + overhead} "
                   f"that VXLAN needs; largest packet that passes: {largest}",
                   setting="mtu", **detail)  # fmt: skip
    return hop(view.name, "mtu", underlay, "pass",
               f"packet {pkt.size} + {overhead} fits {underlay} MTU {under}; largest that "
               f"passes: {largest}", **detail)  # fmt: skip


def decap_hop(view: HostView, vx: dict[str, Any] | None, vni: Any,
              source_vtep: str | None) -> dict[str, Any]:  # fmt: skip
    host = view.name
    if vx is not None and vx["name"] is None:  # OVS: the tunnel port from the source VTEP
        vx = dict(vx, name=(vx.get("by_remote") or {}).get(source_vtep))
        if vx["name"] is None:
            return hop(host, "vxlan", None, "drop",
                       f"VNI {vni}: no tunnel port from VTEP {source_vtep} on this host",
                       vni=vni, setting="remote_ip", remotes=vx["remotes"])  # fmt: skip
    if vx is None or vx["vni"] != vni:
        return hop(
            host,
            "vxlan",
            None,
            "drop",
            f"no VXLAN device for VNI {vni} in the destination's bridge",
            vni=vni,
        )
    if not vx["up"]:
        return hop(host, "vxlan", vx["name"], "drop", f"{vx['name']} (VNI {vni}) is down")
    return hop(
        host,
        "vxlan",
        vx["name"],
        "decapsulate",
        f"VNI {vni} on {vx['name']} (VTEP {vx['local']})",
        vni=vni,
        local=vx["local"],
    )
