#!/usr/bin/python3
# WANT_JSON
"""Network counters, read-only, for `vnetctl stats`: per link the kernel's counters
(`ip -j -s -d link`: packets, bytes, drops, errors), its carrier changes
(/sys/class/net/DEV/carrier_changes), its state, and a bond member's state and MII
status; per Open vSwitch interface its statistics and link resets (None without OVS);
per VXLAN device (Linux or OVS) the remote VTEPs present; per HTB class its counters (the
`tc` fact traffic_shaping reads: sent bytes and packets, drops, overlimits, backlog),
named on the controller from the declared classes (vnetctl/stats/shaping.py).
Nothing on the host is changed."""

import os
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_facts, vnet_ovs
    from ansible.module_utils import vnet_tc as tc
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_facts
    import vnet_host as host
    import vnet_ovs
    import vnet_tc as tc

ARGUMENT_SPEC = {}
COUNTERS = ("packets", "bytes", "dropped", "errors")
KERNEL_NAME = re.compile(r"^[^/\s:]{1,15}$")  # what the kernel allows a device name


def ovs_interfaces(tables):
    rows = tables["Interface"]
    return {r["name"]: {"statistics": r["statistics"] or {}, "link_state": r["link_state"],
                        "link_resets": r["link_resets"], "type": r["type"] or "",
                        "remote_ip": (r["options"] or {}).get("remote_ip")}
            for r in rows}  # fmt: skip


FACTS = {
    "link_stats": vnet_facts.command(["ip", "-j", "-s", "-d", "link", "show"]),
    "ovs_stats": vnet_ovs.ovsdb(
        {"Interface": ["name", "statistics", "link_state", "link_resets", "type", "options"]},
        ovs_interfaces,
    ),
    "tc": tc.source(),
}
# a class's counters (vnet_htb.STATS) -> what stats calls them
CLASS_COUNTERS = {"bytes": "sent_bytes", "packets": "sent_packets", "drops": "drops",
                  "overlimits": "overlimits", "backlog": "backlog_bytes",
                  "qlen": "backlog_packets"}  # fmt: skip


def tc_classes(fact):
    """{device: {classid: {parent, counters}}} of every HTB class with counters."""
    out = {}
    for dev, classes in sorted(((fact or {}).get("classes") or {}).items()):
        for cid, cls in classes.items():
            if cls.get("stats"):
                row = {name: cls["stats"][key] for key, name in CLASS_COUNTERS.items()}
                out.setdefault(dev, {})[cid] = dict(row, parent=cls.get("parent"))
    return out


def carrier_changes(name, root="/sys/class/net"):
    if not KERNEL_NAME.match(name) or name in (".", ".."):
        return None
    try:
        with open(os.path.join(root, name, "carrier_changes")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):  # a device gone meanwhile, or one without a carrier
        return None


def port(link):
    stats = link.get("stats64") or {}
    info = link.get("linkinfo") or {}
    entry = {
        "kind": info.get("info_kind") or link.get("link_type", ""),
        "master": link.get("master"),
        "operstate": link.get("operstate", "UNKNOWN"),
        "carrier_changes": carrier_changes(link["ifname"]),
    }
    for direction in ("rx", "tx"):
        for counter in COUNTERS:
            entry["%s_%s" % (direction, counter)] = (stats.get(direction) or {}).get(counter, 0)
    if info.get("info_slave_kind") == "bond":
        member = info.get("info_slave_data") or {}
        entry["bond_member"] = {
            "state": member.get("state"),
            "mii_status": member.get("mii_status"),
        }
    return entry


def vxlan_peers(links, fdb, ovs):
    """Remote VTEPs present per VXLAN device: a Linux one's fdb entries with a `dst`
    (its own `remote` too), an OVS vxlan interface's remote_ip (a flow-based one, remote
    `flow`, has none fixed: an empty list)."""
    peers = {}
    for link in links:
        info = link.get("linkinfo") or {}
        if info.get("info_kind") == "vxlan":
            remote = (info.get("info_data") or {}).get("remote")
            peers[link["ifname"]] = {remote} if remote else set()
    for entry in fdb or []:
        if entry.get("ifname") in peers and entry.get("dst") not in (None, "0.0.0.0", "::"):
            peers[entry["ifname"]].add(entry["dst"])
    for name, iface in (ovs or {}).items():
        if iface.get("type") == "vxlan":
            remote = iface.get("remote_ip")
            peers[name] = {remote} if remote and remote != "flow" else set()
    return {dev: sorted(found) for dev, found in peers.items()}


def run(params, check, facts):
    links = [link for link in facts.get("link_stats") if link.get("ifname") != "lo"]
    return {
        "changed": False,
        "failed": False,
        "msg": "ok",
        "stats": {
            "ports": {link["ifname"]: port(link) for link in links},
            "ovs": facts.get("ovs_stats"),
            "vxlan_peers": vxlan_peers(links, facts.get("fdb"), facts.get("ovs_stats")),
            "tc_classes": tc_classes(facts.get("tc")),
        },
    }


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
