"""The layers a frame crosses on one host, each judged from the host's state and the
kernel's own lookups (path_trace): the VM's port, its VLAN, port security, the bridge's
forwarding decision, tc, VXLAN, the underlay route and MTU. Each returns hops
({host, layer, device, decision, reason, detail}); a drop names the rule or setting."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from vnetctl.trace.endpoints import Endpoint
from vnetctl.trace.hostview import HostView

VXLAN_IPV4_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
VXLAN_IPV6_OVERHEAD = 70
VLAN_TAG = 4  # an 802.1Q tag the inner frame carries over a trunk tunnel port


@dataclass
class Packet:
    proto: str | None
    port: int | None
    vlan: int | None
    size: int  # the IP packet, as an MTU counts it
    src_mac: str | None
    dst_mac: str | None
    src_ip: str | None
    dst_ip: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def hop(host: str, layer: str, device: str | None, decision: str, reason: str,
        **detail: Any) -> dict[str, Any]:  # fmt: skip
    return {"host": host, "layer": layer, "device": device, "decision": decision,
            "reason": reason, "detail": detail}  # fmt: skip


def port_hop(view: HostView, ep: Endpoint, pkt: Packet, leaving: bool) -> dict[str, Any]:
    """The VM's port: it exists, is up, and its MTU takes the frame."""
    name, host = ep.port, view.name
    mtu = view.mtu(name)
    last = "deliver" if leaving else "pass"
    if mtu is None:
        return hop(host, "port", name, "drop", f"port {name} does not exist on {host}")
    if not view.is_up(name):
        state = (view.link(name) or {}).get("operstate")
        return hop(host, "port", name, "drop", f"port {name} is down (operstate {state})",
                   mtu=mtu, operstate=state)  # fmt: skip
    if pkt.size > mtu:
        return hop(host, "port", name, "drop", f"port {name} MTU {mtu} < packet {pkt.size}",
                   mtu=mtu, largest=mtu)  # fmt: skip
    how = f"found by {ep.found}; " if ep.found else ""
    return hop(host, "port", name, last, f"{how}port {name} up, MTU {mtu}",
               mtu=mtu, bridge=ep.bridge, dataplane=ep.dataplane)  # fmt: skip


def vlan_hop(view: HostView, bridge: str, port: str, pkt: Packet, ingress: bool) -> dict | None:
    """A Linux bridge port's VLAN membership (vlan_filtering): a frame from a VM is
    classified in the port's PVID; one leaving must be in a VLAN the port is a member of."""
    if not view.vlan_filtering(bridge):
        return None
    member = view.membership(port) or {"vlans": [], "pvid": None, "untagged": []}
    way = "enters" if ingress else "leaves"
    vlan = pkt.vlan
    if vlan is None:
        return hop(view.name, "vlan", port, "drop", f"untagged frame {way} {port}: no PVID",
                   **member)  # fmt: skip
    if vlan in member["vlans"]:
        tagged = "untagged" if vlan in member["untagged"] else "tagged"
        return hop(view.name, "vlan", port, "pass",
                   f"VLAN {vlan} admitted on {port} ({tagged}; PVID {member['pvid']})",
                   vlan=vlan, **member)  # fmt: skip
    have = ",".join(str(v) for v in member["vlans"]) or "none"
    return hop(view.name, "vlan", port, "drop",
               f"VLAN {vlan} not admitted on {port}: bridge vlan of {port} is {have} "
               f"(PVID {member['pvid']})", vlan=vlan, setting="bridge vlan", **member)  # fmt: skip


def security_hop(view: HostView, port: str, pkt: Packet, ingress: bool) -> dict | None:
    """Port security (port_group's nftables table): what the port sends must come from
    its guest's MAC (and IPs, when declared); what it receives must be for its MAC."""
    guard = view.guard(port)
    if guard is None:
        return None
    host = view.name
    if ingress and guard.get("lla") is not None:  # forged transmits rejected
        if pkt.src_mac not in guard["macs"]:
            return hop(host, "security", port, "drop",
                       f"forged transmits rejected on {port}: source MAC {pkt.src_mac} is not "
                       f"the guest's ({', '.join(guard['macs'])})", rule="ether-source",
                       chain="guard", table="bridge vnetctl", guard=guard)  # fmt: skip
        if guard.get("ips") is not None and pkt.src_ip and pkt.src_ip not in guard["ips"]:
            rule = "ip6-source" if ":" in pkt.src_ip else "ip4-source"
            return hop(host, "security", port, "drop",
                       f"source IP {pkt.src_ip} is not one of {port}'s guest "
                       f"({', '.join(guard['ips'])})", rule=rule, table="bridge vnetctl",
                       guard=guard)  # fmt: skip
        return hop(host, "security", port, "pass",
                   f"port security on {port}: source MAC {pkt.src_mac} is the guest's",
                   guard=guard)  # fmt: skip
    if not ingress and guard.get("inbound"):  # MAC changes rejected
        unicast = pkt.dst_mac and int(pkt.dst_mac[:2], 16) & 1 == 0
        if unicast and pkt.dst_mac not in guard["macs"]:
            return hop(host, "security", port, "drop",
                       f"MAC changes rejected on {port}: frames for {pkt.dst_mac} are not the "
                       f"guest's ({', '.join(guard['macs'])})", rule="other-destination",
                       chain="guard_in", table="bridge vnetctl", guard=guard)  # fmt: skip
        return hop(host, "security", port, "pass",
                   f"port security on {port}: destination {pkt.dst_mac} is the guest's",
                   guard=guard)  # fmt: skip
    return None


def fdb_hop(view: HostView, bridge: str, pkt: Packet, want: str) -> dict[str, Any]:
    """The Linux bridge's decision for the destination MAC (`bridge fdb get`): the port
    of its entry, or a flood to every port of the VLAN."""
    answer = view.lookups.get(("fdb", bridge))
    entries = answer.get("answer") if isinstance(answer, dict) else None
    entry = entries[0] if entries else None
    if entry and entry.get("ifname"):
        port = entry["ifname"]
        how = "forward" if port == want else "forward"
        state = entry.get("state") or "learned"
        note = "" if port == want else f" (not {want}: the frame goes there)"
        return hop(view.name, "bridge", bridge, how,
                   f"fdb entry {pkt.dst_mac} vlan {pkt.vlan or '-'} -> {port} ({state}){note}",
                   port=port, entry=entry)  # fmt: skip
    reason = (answer or {}).get("error") or "no entry"
    ports = view.net.ports(bridge)
    return hop(view.name, "bridge", bridge, "flood",
               f"no fdb entry for {pkt.dst_mac} on {bridge}: flooded to its ports, {want} "
               f"among them", ports=ports, lookup=reason)  # fmt: skip


def tc_hop(view: HostView, device: str, pkt: Packet) -> dict | None:
    """The HTB class the frame is put in on `device` (its filters, else the default
    class) and its drops: rising between the facts' read and the lookup means the class
    is at its limit now."""
    tc = view.tc(device)
    classes = tc.get("classes") or {}
    if not classes:
        return None
    classid, by = classify(tc, pkt)
    before = classes.get(classid) or {}
    later = ((view.lookups.get(("tc", device)) or {}).get("answer") or {}).get(classid) or {}
    drops0 = (before.get("stats") or {}).get("drops", 0)
    drops1 = (later.get("stats") or {}).get("drops", drops0)
    over = (later.get("stats") or {}).get("overlimits", 0)
    rate, ceil = before.get("rate"), before.get("ceil")
    detail = {"class": classid, "by": by, "rate_kbit": rate, "ceil_kbit": ceil,
              "drops": drops1, "drops_rising": drops1 - drops0, "overlimits": over}  # fmt: skip
    if classid not in classes:
        return hop(view.name, "tc", device, "unknown",
                   f"frame goes to class {classid} ({by}), which {device} does not have",
                   **detail)  # fmt: skip
    if drops1 > drops0:
        return hop(view.name, "tc", device, "drop",
                   f"class {classid} ({by}) at its limit (ceil {ceil} kbit): "
                   f"{drops1 - drops0} drops while traced, {drops1} in all", **detail)  # fmt: skip
    return hop(view.name, "tc", device, "pass",
               f"class {classid} ({by}), ceil {ceil} kbit, {drops1} drops, not rising",
               **detail)  # fmt: skip


def classify(tc: dict[str, Any], pkt: Packet) -> tuple[str, str]:
    for rule in sorted(tc.get("filters") or [], key=lambda r: r.get("pref") or 0):
        target = rule.get("flowid")
        if target and rule_matches(rule, pkt):
            return target, f"filter pref {rule.get('pref')}"
    for qdisc in tc.get("qdiscs") or []:
        if qdisc.get("kind") == "htb" and qdisc.get("root"):
            default = str((qdisc.get("options") or {}).get("default", "0"))
            minor = default[2:] if default.startswith("0x") else default
            return f"{qdisc['handle'].rstrip(':')}:{minor}", "the default class"
    return "?", "no root HTB qdisc"


def rule_matches(rule: dict[str, Any], pkt: Packet) -> bool:
    if "vlan" in rule:
        return rule["vlan"] == pkt.vlan
    fields = rule.get("fields")
    if fields is None:
        return False
    for name, value in fields.items():
        if name == "protocol" and value != pkt.proto:
            return False
        if name == "dport" and str(value) != str(pkt.port):
            return False
        if name in ("src", "dst"):
            ip = pkt.src_ip if name == "src" else pkt.dst_ip
            if ip is None or ipaddress.ip_address(ip) not in ipaddress.ip_network(value):
                return False
        if name in ("sport", "dscp"):
            return False  # the trace does not know them: not this rule
    return True
