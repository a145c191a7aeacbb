#!/usr/bin/python3
# WANT_JSON
"""Network counters, read-only, for `vnetctl stats`: per link the kernel's counters
(`ip -j -s -d link`: packets, bytes, drops, errors), its carrier changes
(/sys/class/net/DEV/carrier_changes), its state, and a bond member's state and MII
status; per Open vSwitch interface its statistics and link resets (None without OVS);
per VXLAN device (Linux or OVS) the remote VTEPs present; per HTB class its counters (the
`tc` fact traffic_shaping reads: sent bytes and packets, drops, overlimits, backlog),
named on the controller from the declared classes (vnetctl/stats/declared.py); per Open
vSwitch bridge its mirrors (what they select, where they send, packets and bytes sent)
and flow export (NetFlow, sFlow, IPFIX: the records ovs_bridge reads); per OVS bond
(`ovs-appctl bond/show`) each member's state.
Nothing on the host is changed."""

import os
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_facts, vnet_ovs, vnet_ovs_config
    from ansible.module_utils import vnet_tc as tc
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_facts
    import vnet_host as host
    import vnet_ovs
    import vnet_ovs_config
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
    "ovs_config": vnet_ovs_config.CONFIG,  # ovs_bridge's: mirrors and flow export
    "ovs_mirror_stats": vnet_ovs.ovsdb(
        {"Mirror": ["name", "statistics"]},
        lambda tables: {r["name"]: r["statistics"] or {} for r in tables["Mirror"]},
    ),
    "ovs_bonds": vnet_facts.command(
        ["ovs-appctl", "bond/show"], lambda out: parse_bonds(out), optional=True
    ),  # fmt: skip
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


def parse_bonds(output):
    """{bond: {"lacp_status", "members": {member: {"enabled", "active", "may_enable"}}}}
    from `ovs-appctl bond/show` ("member NAME: enabled", "slave" before OVS 2.14)."""
    bonds, bond, member = {}, None, None
    for line in output.splitlines():
        words = line.split()
        if line.startswith("---- ") and line.endswith(" ----"):
            bond = bonds.setdefault(line[5:-5], {"lacp_status": None, "members": {}})
        elif bond is None:
            continue
        elif line.startswith("lacp_status:"):
            bond["lacp_status"] = line.partition(":")[2].strip()
        elif len(words) == 3 and words[0] in ("member", "slave") and words[1].endswith(":"):
            member = bond["members"][words[1][:-1]] = {
                "enabled": words[2] == "enabled",
                "active": False,
                "may_enable": None,
            }
        elif member is not None and line.strip() in ("active member", "active slave"):
            member["active"] = True
        elif member is not None and line.strip().startswith("may_enable:"):
            member["may_enable"] = line.partition(":")[2].strip() == "true"
    return bonds


def ovs_bridges(config, mirror_stats):
    """Per OVS bridge its mirrors (with the packets and bytes each sent) and flow export,
    as ovs_bridge reads them (vnet_ovs_config); None without OVS."""
    if config is None:
        return None
    out = {}
    for name, bridge in config["bridges"].items():
        mirrors = {}
        for mirror, spec in bridge["mirrors"].items():
            sent = (mirror_stats or {}).get(mirror) or {}
            mirrors[mirror] = dict(spec, tx_packets=sent.get("tx_packets"),
                                   tx_bytes=sent.get("tx_bytes"))  # fmt: skip
        out[name] = {"mirrors": mirrors}
        out[name].update({k: bridge[k] for k in ("netflow", "sflow", "ipfix")})
    return out


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
            "ovs_bridges": ovs_bridges(facts.get("ovs_config"), facts.get("ovs_mirror_stats")),
            "ovs_bonds": facts.get("ovs_bonds"),
        },
    }


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
