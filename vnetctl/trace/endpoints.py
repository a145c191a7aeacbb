"""SRC and DST of `vnetctl trace`, found in the hosts' state: a port (`[HOST:]NAME`, a VM's
tap or any bridge port, or a guest's own end of a veth), a MAC or an IP address. Each is
validated before anything is looked up, and only what a host's facts hold is returned:
the port the frame enters or leaves the switch by, its MAC, IP and VLAN."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from vnetctl.errors import InputError
from vnetctl.trace.hostview import HostView, lib

MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")


@dataclass
class Endpoint:
    kind: str  # vm | address | port
    host: str
    port: str  # the switch port the frame passes
    bridge: str | None
    dataplane: str | None  # linux | ovs
    mac: str | None = None
    ip: str | None = None
    vlan: int | None = None
    found: str = ""  # how it was found

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": self.host, "port": self.port, "mac": self.mac,
                "ip": self.ip, "vlan": self.vlan}  # fmt: skip


def parse_token(token: str, hosts: list[str]) -> tuple[str | None, str, str]:
    """(host or None, "mac" | "ip" | "name", value), refused unless well formed."""
    host, value = None, token
    head, sep, tail = token.partition(":")
    if sep and head in hosts:
        host, value = head, tail
    if MAC.match(value):
        return host, "mac", value.lower()
    try:
        return host, "ip", str(ipaddress.ip_address(value))
    except ValueError:
        pass
    problem = lib("vnet_core").ifname_problem(value)
    if problem:
        raise InputError(f"{token!r} is no MAC, IP address or port name: {problem}")
    return host, "name", value


def resolve(token: str, views: dict[str, HostView]) -> Endpoint:
    host, kind, value = parse_token(token, list(views))
    candidates = [views[host]] if host else list(views.values())
    found = [e for v in candidates if (e := find(v, kind, value)) is not None]
    if not found:
        where = host or "any host read (" + ", ".join(sorted(views)) + ")"
        raise InputError(f"{token}: no port, MAC or address {value} on {where}")
    if len(found) > 1 and kind != "ip":
        places = ", ".join(f"{e.host}:{e.port}" for e in found)
        raise InputError(f"{token} is on more than one host ({places}): say HOST:{value}")
    return found[0]


def find(view: HostView, kind: str, value: str) -> Endpoint | None:
    if kind == "name":
        return from_device(view, value, "its port name")
    if kind == "mac":
        return by_mac(view, value)
    return by_ip(view, value)


def from_device(view: HostView, name: str, how: str) -> Endpoint | None:
    """The endpoint of a device: a bridge port itself, or a guest's end of a veth whose
    other end is the port."""
    if view.link(name) is None:
        return None
    bridge, plane = view.bridge_of(name)
    if bridge is not None:
        return complete(view, Endpoint("vm" if view.net.vm_port(name) else "port",
                                       view.name, name, bridge, plane, found=how))  # fmt: skip
    peer = view.veth_peer(name)
    if peer is not None and view.bridge_of(peer)[0] is not None:
        bridge, plane = view.bridge_of(peer)
        ep = Endpoint("vm", view.name, peer, bridge, plane, found=f"{how} (veth {name})")
        ep.mac = (view.link(name) or {}).get("address")
        ep.ip = first_ip(view, name)
        return complete(view, ep)
    if view.net.kind(name) == "bridge" or view.net.ovs_bridge(name) == name:
        ep = Endpoint("address", view.name, name, name, "linux" if view.net.kind(name)
                      == "bridge" else "ovs", found=f"{how} (the bridge's own port)")  # fmt: skip
        ep.mac, ep.ip = (view.link(name) or {}).get("address"), first_ip(view, name)
        return complete(view, ep)
    ip = first_ip(view, name)  # a port of no bridge (an uplink): traced up to itself
    return Endpoint("address" if ip else "port", view.name, name, None, None,
                    mac=(view.link(name) or {}).get("address"), ip=ip, found=how)  # fmt: skip


def by_mac(view: HostView, mac: str) -> Endpoint | None:
    for name, link in view.net.links.items():
        if (link.get("address") or "").lower() == mac:
            found = from_device(view, name, f"MAC {mac}")
            if found is not None:
                return found
    for port, ids in ovs_marked(view).items():  # libvirt's attached-mac on OVS
        if (ids.get("attached-mac") or "").lower() == mac:
            ep = from_device(view, port, f"MAC {mac} (external_ids:attached-mac)")
            if ep is not None:
                ep.mac = mac
                return ep
    for port, guarded in declared_guests(view).items():  # port security's declared MAC
        if mac in guarded["macs"]:
            ep = from_device(view, port, f"MAC {mac} (port security declares it)")
            if ep is not None:
                ep.mac = mac
                return ep
    return None


def by_ip(view: HostView, ip: str) -> Endpoint | None:
    holder = view.net.holder(ip)
    if holder is not None:
        ep = from_device(view, holder, f"address {ip}")
        if ep is not None:
            ep.ip = ip
            if ep.kind == "port":
                ep.kind = "address"
            return ep
    for port, guarded in declared_guests(view).items():
        if ip in guarded["ips"]:
            ep = from_device(view, port, f"address {ip} (port security declares it)")
            if ep is not None:
                ep.ip = ep.ip or ip
                return ep
    return None


def first_ip(view: HostView, device: str) -> str | None:
    entries = [e for e in view.net.entries(device) if e["scope"] == "global"]
    return entries[0]["local"] if entries else None


def ovs_marked(view: HostView) -> dict[str, dict]:
    interfaces = ((view.data.get("ovs") or {}).get("interfaces")) or {}
    return {n: (i.get("external_ids") or {}) for n, i in interfaces.items()}


def declared_guests(view: HostView) -> dict[str, dict]:
    """{port: {"macs", "ips"}} port security declares (nftables sets)."""
    table = lib("vnet_nft_portsec").table(view.data.get("nft_bridge")) or {}
    out: dict[str, dict] = {}
    for set_name, elements in (table.get("elements") or {}).items():
        key = {"macs": "macs", "addr4": "ips", "addr6": "ips"}.get(set_name)
        for element in elements if key else ():
            port, _, value = element.partition(" . ")
            out.setdefault(port, {"macs": [], "ips": []})[key].append(value.lower())
    return out


def complete(view: HostView, ep: Endpoint) -> Endpoint:
    """The MAC and VLAN a port's facts say, where the token did not."""
    if ep.mac is None:
        guarded = declared_guests(view).get(ep.port)
        marked = ovs_marked(view).get(ep.port, {}).get("attached-mac")
        if guarded and guarded["macs"]:
            ep.mac = guarded["macs"][0]
        elif marked:
            ep.mac = marked.lower()
        elif ep.kind == "address":
            ep.mac = (view.link(ep.port) or {}).get("address")
        elif view.veth_peer(ep.port):  # a VM-like veth: its other end is the guest
            ep.mac = (view.link(view.veth_peer(ep.port)) or {}).get("address")
            ep.ip = ep.ip or first_ip(view, view.veth_peer(ep.port))
    if ep.ip is None:
        guarded = declared_guests(view).get(ep.port)
        ep.ip = guarded["ips"][0] if guarded and guarded["ips"] else None
    ep.vlan = access_vlan(view, ep)
    return ep


def access_vlan(view: HostView, ep: Endpoint) -> int | None:
    if ep.dataplane == "ovs":
        tag = view.ovs_port(ep.port).get("tag")
        return tag if isinstance(tag, int) else None
    if ep.bridge and view.vlan_filtering(ep.bridge):
        membership = view.membership(ep.port)
        return membership["pvid"] if membership else None
    return None
