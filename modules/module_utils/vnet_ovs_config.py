"""Open vSwitch configuration as the ovs_* modules read it: one OVSDB fact source for
bridges, ports, bonds, interfaces, mirrors and flow export (merged into the play's one
ovs-vsctl with every other OVSDB source), the OpenFlow rules vnetctl owns, and the
per-port VLAN settings both ovs_bridge and ovs_port_group write.

vnetctl's OpenFlow rules carry cookies 0x766e.... ("vn"): the upper 16 bits mark them as
vnetctl's, the next 16 name the port group (a hash of its name). Reads and deletes always
go through that cookie mask: a rule anyone else wrote is never read, changed or removed.

Runs on the managed host: Python 3.9+, standard library only.
"""

import json
import re
import zlib

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_ovs
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_ovs

step = vnet_core.step

TABLES = {
    "Open_vSwitch": ["ovs_version"],
    "Bridge": ["_uuid", "name", "ports", "datapath_type", "fail_mode", "stp_enable",
               "rstp_enable", "mirrors", "netflow", "sflow", "ipfix"],
    "Port": ["_uuid", "name", "interfaces", "tag", "trunks", "vlan_mode", "bond_mode", "lacp",
             "bond_updelay", "bond_downdelay", "other_config"],
    "Interface": ["_uuid", "name", "type", "mtu_request", "external_ids", "ofport"],
    "Mirror": ["_uuid", "name", "select_all", "select_src_port", "select_dst_port",
               "select_vlan", "output_port", "output_vlan"],
    "NetFlow": ["_uuid", "targets", "active_timeout"],
    "sFlow": ["_uuid", "targets", "sampling", "polling", "header", "agent"],
    # every column: template_interval exists from OVS 3.2 (schema 8.4.0) on
    "IPFIX": [vnet_ovs.ALL],
}  # fmt: skip

TEMPLATE_RESEND_S = 600  # OVS's IPFIX template interval: fixed before 3.2, default after
COOKIE_OWNER = 0x766E << 48
OWNER_MASK = 0xFFFF << 48
GROUP_MASK = 0xFFFFFFFF << 32


def as_list(value):
    """An OVSDB set as a list (one element comes as the bare value, none as [])."""
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def one(value):
    """An optional OVSDB value (a set of 0 or 1): the value or None."""
    items = as_list(value)
    return items[0] if items else None


def _export(row, fields):
    """A flow-export record as an object of its own: drift calls a removed one missing."""
    if row is None:
        return {"state": "absent"}
    out = {"state": "present", "targets": sorted(as_list(row["targets"]))}
    out.update({f: one(row.get(f)) for f in fields})
    if "template_interval" in row:  # OVS 3.2 and later; unset is OVS's 600 s
        out["template_interval"] = one(row["template_interval"]) or TEMPLATE_RESEND_S
    return out


def parse(tables):
    """{bridges, ports, interfaces}: names everywhere, uuids resolved."""
    ports_t = {p["_uuid"]: p for p in tables["Port"]}
    ifaces_t = {i["_uuid"]: i for i in tables["Interface"]}
    mirrors_t = {m["_uuid"]: m for m in tables["Mirror"]}
    exports = {t: {r["_uuid"]: r for r in tables[t]} for t in ("NetFlow", "sFlow", "IPFIX")}

    def port_names(uuids):
        return sorted(ports_t[u]["name"] for u in as_list(uuids) if u in ports_t)

    bridges, ports = {}, {}
    for row in tables["Bridge"]:
        name = row["name"]
        mirrors, mirror_uuids = {}, {}
        for uuid in as_list(row["mirrors"]):
            m = mirrors_t[uuid]
            mirror_uuids[m["name"]] = uuid
            mirrors[m["name"]] = {
                "select_all": bool(m["select_all"]),
                "src": port_names(m["select_src_port"]),
                "dst": port_names(m["select_dst_port"]),
                "vlans": sorted(as_list(m["select_vlan"])),
                "output_port": (port_names(m["output_port"]) or [None])[0],
                "output_vlan": one(m["output_vlan"]),
            }
        bridges[name] = {
            "datapath_type": row["datapath_type"] or "system",
            "fail_mode": one(row["fail_mode"]) or "standalone",
            "stp": row["stp_enable"] is True,
            "rstp": row["rstp_enable"] is True,
            "ports": port_names(row["ports"]),
            "mirrors": mirrors,
            "mirror_uuids": mirror_uuids,  # a name ovs-vsctl cannot be given is removed by uuid
            "netflow": _export(exports["NetFlow"].get(one(row["netflow"])), ["active_timeout"]),
            "sflow": _export(
                exports["sFlow"].get(one(row["sflow"])), ["sampling", "polling", "header", "agent"]
            ),  # fmt: skip
            "ipfix": _export(
                exports["IPFIX"].get(one(row["ipfix"])),
                [
                    "sampling",
                    "obs_domain_id",
                    "obs_point_id",
                    "cache_active_timeout",
                    "cache_max_flows",
                ],
            ),  # fmt: skip
        }
        for port in bridges[name]["ports"]:
            ports[port] = {"bridge": name}
    for row in tables["Port"]:
        if row["name"] not in ports:
            continue
        other = row["other_config"] or {}
        ports[row["name"]].update(
            interfaces=sorted(ifaces_t[u]["name"] for u in as_list(row["interfaces"])),
            tag=one(row["tag"]),
            trunks=sorted(as_list(row["trunks"])),
            vlan_mode=one(row["vlan_mode"]),
            bond_mode=one(row["bond_mode"]),
            lacp=one(row["lacp"]) or "off",
            lacp_time=other.get("lacp-time", "slow"),
            lacp_fallback_ab=other.get("lacp-fallback-ab") == "true",
            primary=other.get("bond-primary"),
            updelay=row["bond_updelay"] or 0,
            downdelay=row["bond_downdelay"] or 0,
        )
    interfaces = {
        i["name"]: {
            "type": i["type"] or "system",
            "mtu_request": one(i["mtu_request"]),
            "external_ids": i["external_ids"] or {},
            "ofport": one(i["ofport"]),  # an OpenFlow port number: vnet_ovs_portsec
        }
        for i in tables["Interface"]
    }
    return {"bridges": bridges, "ports": ports, "interfaces": interfaces}


CONFIG = vnet_ovs.ovsdb(TABLES, parse)


def recorded(facts):
    """The OVS configuration in `facts` for a snapshot: None where OVS does not run, or
    where the facts were recorded before this source existed."""
    try:
        return facts.get("ovs_config") or None
    except vnet_core.ModuleError:
        return None


# ---- vnetctl's OpenFlow rules --------------------------------------------------------

# A match word: a flag (`arp`) or FIELD=VALUE, the value a JSON string where OVS quotes a
# port name (namemap_put_name in OVS's lib/namemap.c: any name but a letter and then
# letters and digits), else up to a comma or a blank (lib/ofp-parse.c parse_value).
MATCH_WORD = re.compile(r'([^,\s=]+)(=("(?:[^"\\]|\\.)*"|[^,\s]*))?')


def parse_flows(output):
    """`ovs-ofctl --names --no-stats dump-flows BR cookie=...`: one dict per rule, its
    cookie (int), priority and match fields (port names unquoted), and its actions
    (text, as dumped)."""
    flows = []
    for text in output.splitlines():
        text = text.strip()
        if not text.startswith("cookie="):
            continue
        match, _, actions = text.rpartition(" actions=")
        fields, flags = {}, []
        for key, equals, value in MATCH_WORD.findall(match):
            if not equals:
                flags.append(key)
            else:
                fields[key] = json.loads(value) if value.startswith('"') else value
        flow = {k: v for k, v in fields.items() if k not in ("cookie", "table")}
        flow.update(cookie=int(fields["cookie"], 16), table=int(fields.get("table", 0)))
        flow.update(protocols=flags, actions=actions)
        flows.append(flow)
    return flows


# OVS's reserved port names (OFPUTIL_NAMED_PORTS_WITH_NONE in lib/ofp-port.c), which
# ovs-ofctl reads in any case before it looks up a port's name
RESERVED_PORTS = ("in_port", "table", "normal", "flood", "all", "controller", "local", "any",
                  "unset", "none")  # fmt: skip
READS_BACK = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*\Z")


def in_port(port, cfg=None):
    """`port` (an interface's name, LOCAL, or the number of a port gone) as an ovs-ofctl
    flow names it. dump-flows quotes most names (vx300-274d as "vx300-274d"), and no
    batch line holds a quote: ovs-ofctl looks a bare word up in the bridge's port names
    (ofputil_port_from_string), so a name of letters, digits, `_`, `.` and `-` that is
    no number and no reserved name is written as it is; any other by its OpenFlow port
    number (`cfg`, the same facts)."""
    interfaces = (cfg or {}).get("interfaces", {})
    if port == "LOCAL" or (port.isdigit() and port not in interfaces):
        return port
    if READS_BACK.match(port) and port.lower() not in RESERVED_PORTS:
        return port
    number = interfaces.get(port, {}).get("ofport")
    if isinstance(number, int) and number > 0:
        return "%d" % number
    raise vnet_core.ModuleError(
        "port %r: ovs-ofctl cannot be given its name, and Open vSwitch has no OpenFlow "
        "port number for it" % port
    )


FLOWS = vnet_facts.per_device(
    ["ovs-ofctl", "--names", "--no-stats", "dump-flows", "{dev}",
     "cookie=%#x/%#x" % (COOKIE_OWNER, OWNER_MASK)],
    parse=parse_flows,
    optional=True,
)  # fmt: skip


def group_cookie(group):
    return COOKIE_OWNER | (zlib.crc32(group.encode()) & 0xFFFF) << 32


def cookie_match(cookie, mask=GROUP_MASK):
    return "cookie=%#x/%#x" % (cookie, mask)


# ---- a device another bridge holds ---------------------------------------------------


def check_free(dev, name, cfg, facts, what):
    """Refuse, before any change, a device another bridge holds: as a port or a bond
    member of another OVS bridge (ovs-vsctl would refuse it halfway), or as a port of a
    Linux bridge."""
    for port, entry in sorted(cfg["ports"].items()):
        other = entry.get("bridge")
        if other == name or dev not in [port] + entry.get("interfaces", []):
            continue
        if port == dev:
            where = "a port of OVS bridge %s" % other
        else:
            where = "a member of bond %s on OVS bridge %s" % (port, other)
        raise vnet_core.ModuleError("%s %s is %s; remove it there first" % (what, dev, where))
    master = (facts.link(dev) or {}).get("master")
    if master and facts.kind(master) != "openvswitch":
        raise vnet_core.ModuleError(
            "%s %s is a port of %s; remove it there first" % (what, dev, master)
        )


# ---- a port's VLAN and MTU, as ovs_bridge and ovs_port_group both set them ------------

VLAN_FIELDS = ("tag", "trunks", "vlan_mode")
VLAN_MODES = ["access", "trunk", "native-tagged", "native-untagged"]
VLAN = {"type": "int", "range": [0, 4095]}
# a port's (or bond's) VLAN arguments, and its MTU: ovs_bridge's rules for them
VLAN_SPEC = {
    "tag": VLAN,
    "trunks": {"type": "list", "elements": "int", "range": [0, 4095]},
    "vlan_mode": {"type": "str", "choices": VLAN_MODES},
}
MTU = {"type": "int", "range": [68, 65535]}


def port_vlan_steps(port, now, want):
    """`set port`/`clear port` for the VLAN fields of `want` that differ from `now`."""
    out = []
    for field in VLAN_FIELDS:
        if field not in want or _norm(want[field]) == _norm(now.get(field)):
            continue
        value = want[field]
        if value is None or value == []:
            out.append(step("ovs-vsctl", "clear", "port", port, field))
        elif field == "trunks":
            out.append(step("ovs-vsctl", "set", "port", port, "trunks=" + ints(value)))
        else:
            out.append(step("ovs-vsctl", "set", "port", port, "%s=%s" % (field, value)))
    return out


def mtu_steps(iface, now, want):
    if want == now:
        return []
    if want is None:
        return [step("ovs-vsctl", "clear", "interface", iface, "mtu_request")]
    return [step("ovs-vsctl", "set", "interface", iface, "mtu_request=%d" % want)]


def _norm(value):
    if value == []:
        return None  # no trunks: the column is empty either way
    return sorted(value) if isinstance(value, list) else value


def ints(values):
    return "[" + ",".join(str(v) for v in sorted(values)) + "]"
