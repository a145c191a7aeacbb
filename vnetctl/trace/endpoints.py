"""SRC and DST of `vnetctl trace`, found in the hosts' state: a port (`[HOST:]NAME`, a VM's
tap or any bridge port, or a guest's own end of a veth), a MAC or an IP address. Each is
validated before anything is looked up, and only what a host's facts hold is returned:
the port the frame enters or leaves the switch by, its MAC, IP and VLAN."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from vnetctl.errors import InputError
from vnetctl.trace import domains
from vnetctl.trace.domains import MAC
from vnetctl.trace.hostview import HostView, lib


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
    domain: dict[str, Any] | None = None  # the libvirt domain's NIC the port is

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "host": self.host, "port": self.port, "mac": self.mac,
                "ip": self.ip, "vlan": self.vlan, "domain": self.domain}  # fmt: skip


def parse_token(token: str, hosts: list[str]) -> tuple[str | None, str, Any]:
    """(host or None, kind, value), refused unless well formed: "mac", "ip", "name" (a
    port's, or a domain's), or "domain" with (DOMAIN, NIC) for `DOMAIN:NIC`."""
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
    if ":" in value or lib("vnet_core").ifname_problem(value):
        return host, "domain", domains.parse(value, token)
    return host, "name", value


def resolve(token: str, views: dict[str, HostView]) -> Endpoint:
    host, kind, value = parse_token(token, list(views))
    candidates = {host: views[host]} if host else views
    if kind == "domain":
        return by_domain(token, candidates, *value)
    found = [e for v in candidates.values() if (e := find(v, kind, value)) is not None]
    if kind == "name" and (on := domains.hosts_running(candidates, value)):
        domain = by_domain(token, candidates, value, None)
        if any((e.host, e.port) != (domain.host, domain.port) for e in found):
            places = ", ".join(f"{e.host}:{e.port}" for e in found)
            raise InputError(f"{token} is a port ({places}) and a libvirt domain (on "
                             f"{', '.join(on)}): say {value}:NIC for the domain's NIC, "
                             "the port's MAC for the port")  # fmt: skip
        return domain
    if not found:
        where = host or "any host read (" + ", ".join(sorted(views)) + ")"
        what = "port, libvirt domain" if kind == "name" else "port"
        raise InputError(f"{token}: no {what}, MAC or address {value} on {where}")
    if len(found) > 1 and kind != "ip":
        places = ", ".join(f"{e.host}:{e.port}" for e in found)
        raise InputError(f"{token} is on more than one host ({places}): say HOST:{value}")
    return found[0]


def by_domain(token: str, views: dict[str, HostView], name: str, nic: str | None) -> Endpoint:
    """The port of a libvirt domain's NIC, the domain running on one of `views`."""
    on = domains.hosts_running(views, name)
    if not on:
        where = ", ".join(sorted(views))
        raise InputError(f"{token}: no libvirt domain {name} runs on {where} (nor is "
                         f"{name} a port or an inventory host)")  # fmt: skip
    if len(on) > 1:
        raise InputError(f"{token}: libvirt domain {name} runs on {', '.join(on)}: "
                         f"say HOST:{name}" + (f":{nic}" if nic else ""))  # fmt: skip
    view = views[on[0]]
    chosen = domains.select(view, name, nic, token)
    ep = from_device(view, chosen["dev"], f"libvirt domain {name}, NIC {domains.label(chosen)}")
    if ep is None:
        raise InputError(f"{token}: {name}'s NIC {domains.label(chosen)} is device "
                         f"{chosen['dev']}, which {view.name}'s links do not list")  # fmt: skip
    ep.kind, ep.mac = "vm", chosen["mac"] or ep.mac
    return ep


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
    for nic in view.net.libvirt_nics():  # a running domain's NIC (a tap has its own MAC)
        ep = from_device(view, nic["dev"], f"MAC {mac} (libvirt)") if nic["mac"] == mac else None
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
    nic = view.net.libvirt_nic(ep.port)
    ep.domain = domains.describe(nic) if nic else None
    if ep.mac is None:
        guarded = declared_guests(view).get(ep.port)
        marked = ovs_marked(view).get(ep.port, {}).get("attached-mac")
        if guarded and guarded["macs"]:
            ep.mac = guarded["macs"][0]
        elif nic and nic["mac"]:
            ep.mac = nic["mac"]
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
