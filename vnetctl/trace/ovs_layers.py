"""The layers of an Open vSwitch bridge: the port's VLAN (tag, trunks), OVS's own walk
through the bridge's flows for the frame (`ovs-appctl ofproto/trace`: the final
datapath actions and the rule that drops, port security's rules among them, by
vnetctl's cookie), and a bond's members (`bond/show`, the `ovs_bonds` fact)."""

from __future__ import annotations

import re
from typing import Any

from vnetctl.trace.endpoints import Endpoint
from vnetctl.trace.hostview import HostView
from vnetctl.trace.layers import Packet, hop, port_hop, tc_hop

COOKIE_OWNER = 0x766E << 48  # vnet_ovs_config.COOKIE_OWNER: vnetctl's rules
OWNER_MASK = 0xFFFF << 48
RULE = re.compile(r"^\s*\d+\.\s+(?P<match>.*?),\s*priority\s+(?P<prio>\d+)"
                  r"(?:,\s*cookie\s+(?P<cookie>0x[0-9a-f]+))?")  # fmt: skip


def plan(views: dict[str, HostView], src: Endpoint, dst: Endpoint, pkt: Packet,
         out: dict[str, list[dict[str, Any]]]) -> None:  # fmt: skip
    """ofproto/trace lookups: the frame entering the source bridge at the source port,
    and (another host) entering the destination bridge at its tunnel port."""
    fields = {k: getattr(pkt, k) for k in ("src_mac", "dst_mac", "src_ip", "dst_ip", "proto",
                                          "port")}  # fmt: skip
    if src.dataplane == "ovs" and pkt.src_mac and pkt.dst_mac:
        item = {"kind": "ofproto", "bridge": src.bridge, "device": src.port, **fields}
        if pkt.vlan and not views[src.host].ovs_port(src.port).get("tag"):
            item["vlan"] = pkt.vlan  # a trunk port: the frame comes tagged
        out.setdefault(src.host, []).append(_clean(item))
    if dst.dataplane == "ovs" and dst.host != src.host and pkt.src_mac and pkt.dst_mac:
        tunnel = tunnel_port(views[dst.host], dst.bridge)
        if tunnel:
            item = {"kind": "ofproto", "bridge": dst.bridge, "device": tunnel, **fields}
            out.setdefault(dst.host, []).append(_clean(item))


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def tunnel_port(view: HostView, bridge: str) -> str | None:
    interfaces = (view.data.get("ovs_config") or {}).get("interfaces") or {}
    for members in view.net.ovs_ports(bridge).values():
        for name in members:
            if (interfaces.get(name) or {}).get("type") == "vxlan":
                return name
    return None


def vlan_hop(view: HostView, port: str, pkt: Packet, ingress: bool) -> dict | None:
    row = view.ovs_port(port)
    tag, trunks = row.get("tag"), row.get("trunks") or []
    if not isinstance(tag, int) and not trunks:
        return None
    way = "from" if ingress else "to"
    if isinstance(tag, int):
        if pkt.vlan not in (None, tag):
            return hop(view.name, "vlan", port, "drop",
                       f"VLAN {pkt.vlan} not admitted {way} {port}: access port, tag {tag}",
                       tag=tag, vlan=pkt.vlan, setting="tag")  # fmt: skip
        return hop(view.name, "vlan", port, "pass", f"access port {port}, tag {tag}", tag=tag)
    if pkt.vlan not in trunks:
        have = ",".join(str(t) for t in trunks)
        return hop(view.name, "vlan", port, "drop",
                   f"VLAN {pkt.vlan} not admitted {way} {port}: trunks {have}",
                   trunks=trunks, vlan=pkt.vlan, setting="trunks")  # fmt: skip
    return hop(view.name, "vlan", port, "pass", f"VLAN {pkt.vlan} in {port}'s trunks",
               trunks=trunks)  # fmt: skip


def flow_hop(view: HostView, bridge: str, want: str | None) -> dict[str, Any]:
    """ofproto/trace's verdict: the datapath actions, and where they are `drop` the
    last rule matched (port security's when its cookie is vnetctl's)."""
    found = view.lookups.get(("ofproto", bridge)) or {}
    text = found.get("answer")
    if not isinstance(text, str):
        return hop(
            view.name,
            "ovs-flow",
            bridge,
            "unknown",
            f"ofproto/trace gave no answer: {found.get('error') or 'not asked'}",
        )
    rules = [m.groupdict() for m in map(RULE.match, text.splitlines()) if m]
    actions = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                    if ln.startswith("Datapath actions:")), "")  # fmt: skip
    last = rules[-1] if rules else None
    detail = {"datapath_actions": actions, "rules": rules}
    if actions in ("", "drop"):
        if last is None:
            return hop(view.name, "ovs-flow", bridge, "drop", "no flow matched: dropped",
                       **detail)  # fmt: skip
        ours = last["cookie"] and int(last["cookie"], 16) & OWNER_MASK == COOKIE_OWNER
        layer = "security" if ours else "ovs-flow"
        return hop(view.name, layer, bridge, "drop",
                   f"dropped by rule priority {last['prio']} {last['match']}"
                   + (f" cookie {last['cookie']} (vnetctl's port security)" if ours else ""),
                   rule=last, **detail)  # fmt: skip
    decision = "flood" if "," in actions and want else "forward"
    return hop(view.name, "ovs-flow", bridge, decision,
               f"datapath actions {actions}" + (f" (toward {want})" if want else ""),
               **detail)  # fmt: skip


def bond_hops(view: HostView, bridge: str) -> list[dict[str, Any]]:
    """The bridge's bonds: which members can carry the frame (OVS picks one by hash)."""
    out = []
    bonds = view.data.get("ovs_bonds") or {}
    for port in sorted(view.net.ovs_ports(bridge)):
        bond = bonds.get(port)
        if bond is None:
            continue
        members = bond.get("members") or {}
        up = sorted(m for m, s in members.items() if s.get("enabled"))
        down = sorted(m for m in members if m not in up)
        detail = {"members": members, "enabled": up, "disabled": down,
                  "lacp_status": bond.get("lacp_status")}  # fmt: skip
        if not up:
            out.append(
                hop(
                    view.name,
                    "bond",
                    port,
                    "drop",
                    f"bond {port}: no member enabled ({', '.join(down)} down)",
                    **detail,
                )
            )
        else:
            gone = f"; {', '.join(down)} disabled" if down else ""
            which = up[0] if len(up) == 1 else "one of " + ", ".join(up)
            out.append(
                hop(
                    view.name,
                    "bond",
                    port,
                    "forward",
                    f"bond {port}: by hash, member {which}{gone}",
                    **detail,
                )
            )
    return out


def source_side(view: HostView, src: Endpoint, pkt: Packet, out_port: str | None) -> list:
    return [vlan_hop(view, src.port, pkt, True), flow_hop(view, src.bridge, out_port),
            *bond_hops(view, src.bridge)]  # fmt: skip


def destination_side(view: HostView, dst: Endpoint, pkt: Packet) -> list:
    """The destination bridge's flows (the tunnel's frame), the port's VLAN, tc, port:
    up to the first drop."""
    found = []
    if ("ofproto", dst.bridge) in view.lookups:
        found.append(flow_hop(view, dst.bridge, dst.port))
    found += [vlan_hop(view, dst.port, pkt, False), tc_hop(view, dst.port, pkt),
              port_hop(view, dst, pkt, leaving=True)]  # fmt: skip
    out = []
    for item in found:
        if item is not None:
            out.append(item)
            if item["decision"] == "drop":
                break
    return out
