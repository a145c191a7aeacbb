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
from vnetctl.trace.overlay import tunnels, vxlan_device

COOKIE_OWNER = 0x766E << 48  # vnet_ovs_config.COOKIE_OWNER: vnetctl's rules
OWNER_MASK = 0xFFFF << 48
RULE = re.compile(r"^\s*\d+\.\s+(?:(?P<match>.*?),\s*)?priority\s+(?P<prio>\d+)"
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
        vx = vxlan_device(views[src.host], src.bridge, "ovs") if src.bridge else None
        entry = tunnel_port(views[dst.host], dst.bridge, (vx or {}).get("local"))
        entry = entry or uplink_member(views[dst.host], dst.bridge)
        if entry:
            item = {"kind": "ofproto", "bridge": dst.bridge, "device": entry, **fields}
            if pkt.vlan:
                item["vlan"] = pkt.vlan  # a tunnel or a trunk: the frame comes tagged
            out.setdefault(dst.host, []).append(_clean(item))


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def tunnel_port(view: HostView, bridge: str, remote: str | None) -> str | None:
    """The bridge's VXLAN port from `remote` (any, without one)."""
    for name, row in tunnels(view, bridge).items():
        if remote is None or (row.get("options") or {}).get("remote_ip") == remote:
            return name
    return None


def vlan_hop(view: HostView, port: str, pkt: Packet, ingress: bool) -> dict | None:
    row = view.ovs_port(port)
    tag, trunks = row.get("tag"), row.get("trunks") or []
    if not isinstance(tag, int) and not trunks:
        return None
    way = "from" if ingress else "to"
    if isinstance(tag, int):
        if pkt.vlan != tag if not ingress else pkt.vlan not in (None, tag):
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
    rules = parse_rules(text)
    actions = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                    if ln.startswith("Datapath actions:")), "")  # fmt: skip
    last = rules[-1] if rules else None
    detail = {"datapath_actions": actions, "rules": rules}
    if actions in ("", "drop"):
        if last is None:
            return hop(view.name, "ovs-flow", bridge, "drop", "no flow matched: dropped",
                       **detail)  # fmt: skip
        if not last["drops"]:  # the rule forwards (NORMAL): nothing can go out
            return hop(view.name, "ovs-flow", bridge, "drop",
                       f"rule priority {last['prio']} sends it on ({last['actions']}) but "
                       f"no port takes it: {last['note'] or 'datapath actions drop'}",
                       rule=last, by_rule=False, **detail)  # fmt: skip
        ours = last["cookie"] and int(last["cookie"], 16) & OWNER_MASK == COOKIE_OWNER
        layer = "security" if ours else "ovs-flow"
        return hop(view.name, layer, bridge, "drop",
                   f"dropped by rule priority {last['prio']} {last['match'] or '(matches all)'}"
                   + (f" cookie {last['cookie']} (vnetctl's port security)" if ours else ""),
                   rule=last, by_rule=True, **detail)  # fmt: skip
    outputs = [a for a in top_level(actions)
               if a.isdigit() or a.startswith(("tnl_push", "clone(", "output"))]  # fmt: skip
    decision = "flood" if len(outputs) > 1 else "forward"
    detail["outputs"] = len(outputs)
    return hop(view.name, "ovs-flow", bridge, decision,
               f"datapath actions {actions}" + (f" (toward {want})" if want else ""),
               **detail)  # fmt: skip


def parse_rules(text: str) -> list[dict[str, Any]]:
    """The rules ofproto/trace walked, each with its actions (the indented lines after
    it), whether they are `drop`, and OVS's note on the last one ("-> ...")."""
    rules: list[dict[str, Any]] = []
    for line in text.splitlines():
        found = RULE.match(line)
        if found:
            rules.append(dict(found.groupdict(), actions="", drops=False, note=""))
        elif rules and line.startswith("    ") and line.strip():
            words = line.strip()
            if words.startswith("->"):
                rules[-1]["note"] = words[2:].strip()
            elif not rules[-1]["actions"]:
                rules[-1]["actions"] = words
                rules[-1]["drops"] = words == "drop"
    return rules


def top_level(actions: str) -> list[str]:
    """The datapath actions, split at the commas outside parentheses."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(actions):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(actions[start:i])
            start = i + 1
    return [a for a in [*out, actions[start:]] if a]


def uplink_member(view: HostView, bridge: str) -> str | None:
    """The member of the bridge's bond a frame from another host comes in by: an
    enabled one (any, when none is)."""
    bonds = view.data.get("ovs_bonds") or {}
    for port in sorted(view.net.ovs_ports(bridge)):
        members = (bonds.get(port) or {}).get("members") or {}
        enabled = sorted(m for m, state in members.items() if state.get("enabled"))
        if enabled or members:
            return (enabled or sorted(members))[0]
    return None


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


def source_side(view: HostView, src: Endpoint, pkt: Packet, out_port: str | None,
                same: bool) -> list:  # fmt: skip
    """The port's VLAN, the bridge's flows; toward another host by the bridge's own
    uplink (no VXLAN port), its bonds."""
    flow = flow_hop(view, src.bridge, out_port)
    bonds = [] if same or out_port else bond_hops(view, src.bridge)
    if flow["decision"] == "drop" and not flow["detail"].get("by_rule", True):
        down = [b for b in bonds if b["decision"] == "drop"]  # what nothing goes out by
        if down:
            return [h for h in (vlan_hop(view, src.port, pkt, True), *down) if h]
    return [h for h in (vlan_hop(view, src.port, pkt, True), flow, *bonds) if h]


def destination_side(view: HostView, dst: Endpoint, pkt: Packet, src_host: str) -> list:
    """The destination bridge's flows (the tunnel's frame), the port's VLAN, tc, port:
    up to the first drop."""
    found = [vlan_hop(view, dst.port, pkt, False)]
    if ("ofproto", dst.bridge) in view.lookups and view.name != src_host:
        found.append(flow_hop(view, dst.bridge, dst.port))
    found += [tc_hop(view, dst.port, pkt), port_hop(view, dst, pkt, leaving=True)]
    out = []
    for item in found:
        if item is not None:
            out.append(item)
            if item["decision"] == "drop":
                break
    return out
