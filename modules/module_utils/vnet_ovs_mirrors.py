"""Open vSwitch mirrors and flow export (NetFlow v5, IPFIX, sFlow) as ovs_bridge declares
them: each a record the bridge points to, changed in the bridge's one ovs-vsctl
transaction. A mirror that goes or changes is removed by name (by its uuid when its name
is none a command may hold); a changed flow export record is set in place.

Runs on the managed host: Python 3.9+, standard library only.
"""

import ipaddress

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts
    from ansible.module_utils import vnet_ovs_config as ovs
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_ovs_config as ovs

ModuleError, step = vnet_core.ModuleError, vnet_core.step

MIRROR_SPEC = {
    "name": {"type": "objname", "required": True},
    "select_all": {"type": "bool", "default": False},
    "select_src_ports": {"type": "list", "elements": "ifname"},
    "select_dst_ports": {"type": "list", "elements": "ifname"},
    "select_vlans": {"type": "list", "elements": "int", "range": [0, 4095]},
    "output_port": {"type": "ifname"},
    "output_vlan": {"type": "int", "range": [1, 4095]},
}
TARGETS = {"type": "list", "elements": "str"}  # "address:port"
EXPORT_SPECS = {
    "netflow": {"targets": TARGETS, "active_timeout": {"type": "int", "range": [-1, 86400]}},
    "sflow": {
        "targets": TARGETS,
        "sampling": {"type": "int", "range": [1, 1 << 30]},
        "polling": {"type": "int", "range": [0, 86400]},
        "header": {"type": "int", "range": [18, 512]},
        "agent": {"type": "ifname"},
    },
    "ipfix": {
        "targets": TARGETS,
        "sampling": {"type": "int", "range": [1, 1 << 32 - 1]},
        "obs_domain_id": {"type": "int", "range": [0, (1 << 32) - 1]},
        "obs_point_id": {"type": "int", "range": [0, (1 << 32) - 1]},
        "cache_active_timeout": {"type": "int", "range": [0, 4200]},
        "cache_max_flows": {"type": "int", "range": [0, (1 << 32) - 1]},
        "template_interval": {"type": "int", "range": [1, 3600]},  # OVS 3.2's own range
    },
}
# IPFIX over UDP: a collector knows no record until it has the template, which OVS sends
# when an exporter starts and then every template_interval (600 s unless set, and fixed
# before OVS 3.2): a restarted collector decodes again within this many seconds
TEMPLATE_INTERVAL = 60
INTERVAL_SCHEMA = (8, 4, 0)  # OVSDB schema of OVS 3.2: the IPFIX template_interval column


def schema_version(output):
    """`ovsdb-client get-schema-version Open_vSwitch`: (8, 3, 1), or None."""
    words = output.strip().split(".")
    return tuple(int(w) for w in words) if words and all(w.isdigit() for w in words) else None


# read only where an IPFIX export is declared (one process more, then)
FACTS = {"ovs_schema": vnet_facts.command(["ovsdb-client", "get-schema-version", "Open_vSwitch"],
                                          parse=schema_version, optional=True)}  # fmt: skip


def schema(facts):
    """The host's OVSDB schema version, or None (no OVS; recorded facts without it)."""
    try:
        version = facts.get("ovs_schema")
    except vnet_facts.Missing:
        return None
    return tuple(version) if version else None  # recorded facts hold a list


def desired(declared, want, vm_ports=(), current=None, waits_for=None):
    """The declared mirrors, and those that wait: ({name: mirror}, {field: why}). The
    ports a mirror names are the bridge's (`want`) or the VM ports on it that it leaves
    alone (`vm_ports`); one the task declares as a VM's port (`waits_for(port)`) that is
    not on the bridge yet makes its mirror wait, as it is on the host (`current`) or
    not made, until a later run finds the port (OVS refers to a port's record); any
    other port is refused."""
    ports = set(want["ports"]) | set(vm_ports)
    out, waiting = {}, {}
    for mirror in declared:
        entry = {
            "select_all": mirror["select_all"],
            "src": sorted(mirror.get("select_src_ports") or []),
            "dst": sorted(mirror.get("select_dst_ports") or []),
            "vlans": sorted(mirror.get("select_vlans") or []),
            "output_port": mirror.get("output_port"),
            "output_vlan": mirror.get("output_vlan"),
        }
        absent = [p for p in entry["src"] + entry["dst"] + [entry["output_port"] or want["name"]]
                  if p not in ports and p != want["name"]]  # fmt: skip
        for port in absent:
            if waits_for is None or not waits_for(port):
                raise ModuleError("mirror %s: %s is not a port of bridge %s; declare it in "
                                  "ports (a VM's port that comes later as {name: %s, type: vm}: "
                                  "the mirror then waits for it)"
                                  % (mirror["name"], port, want["name"], port))  # fmt: skip
        if not (entry["select_all"] or entry["src"] or entry["dst"]):  # OVS: VLANs only narrow
            raise ModuleError("mirror %s selects nothing: name select_src_ports, select_dst_ports"
                              " or select_all: true (select_vlans only narrows those)"
                              % mirror["name"])  # fmt: skip
        if (entry["output_port"] is None) == (entry["output_vlan"] is None):
            raise ModuleError("mirror %s: give output_port or output_vlan (one)"
                                   % mirror["name"])  # fmt: skip
        if absent:
            role = "output port" if absent[-1] == entry["output_port"] else "port"
            waiting["mirrors." + mirror["name"]] = (
                "waits for its %s %s, a VM's port not on bridge %s yet: made by a run once "
                "it is" % (role, absent[-1], want["name"]))  # fmt: skip
            if mirror["name"] in ((current or {}).get("mirrors") or {}):
                out[mirror["name"]] = current["mirrors"][mirror["name"]]  # unset: kept
            continue
        out[mirror["name"]] = entry
    return out, waiting


def _target(text, kind):
    address, _, port = (text or "").rpartition(":")
    try:
        vnet_core.ip_value(ipaddress.ip_address, address.strip("[]"))
        if not 0 < int(port) < 65536:
            raise ValueError(port)
    except ValueError:
        raise ModuleError("%s target %r is not ADDRESS:PORT" % (kind, text)) from None
    return text


def desired_export(kind, declared, current, schema=None):
    """The flow export as declared; for IPFIX, the template interval (TEMPLATE_INTERVAL
    unless declared) where the host's OVS has the setting (`schema()`: its OVSDB schema
    version, or None), refused when declared where it has not."""
    targets = sorted(_target(t, kind) for t in declared.get("targets") or [])
    if not targets:
        return {"state": "absent"}
    out = dict(current or {}) if (current or {}).get("state") == "present" else {}
    out.update(state="present", targets=targets)
    out.update({k: v for k, v in declared.items() if k != "targets" and v is not None})
    if kind != "ipfix":
        return out
    version = schema() if schema is not None else None
    if version is not None and version >= INTERVAL_SCHEMA:
        out.setdefault("template_interval", TEMPLATE_INTERVAL)
        if declared.get("template_interval") is None:
            out["template_interval"] = TEMPLATE_INTERVAL
    elif declared.get("template_interval") is not None:
        raise ModuleError(
            "ipfix template_interval needs Open vSwitch 3.2 or later (OVSDB schema 8.4.0); "
            "this host's schema is %s, whose IPFIX templates are re-sent every 600 s, fixed"
            % (".".join(map(str, version)) if version else "unknown"))  # fmt: skip
    return out


def removals(current, desired, bridge):
    """Mirrors that go or change, by name; one whose name no command may hold (`--`,
    made before names were checked, or by hand) by its uuid, so it cannot break a run.
    `bridge`: the bridge's OVSDB record (vnet_ovs_config), or {}."""
    out = []
    have, want = current.get("mirrors", {}), desired["mirrors"]
    for i, mirror in enumerate(sorted(have)):
        if want.get(mirror) == have[mirror]:
            continue
        if vnet_core.name_problem("objname", mirror) is None:
            ref = "@old%d" % i
            out.append(step("ovs-vsctl", "--id=" + ref, "get", "mirror", mirror))
        else:
            ref = (bridge.get("mirror_uuids") or {}).get(mirror)
            if ref is None:
                raise ModuleError("mirror %r on %s cannot be named to ovs-vsctl and its "
                                       "uuid is unknown: remove it by hand"
                                       % (mirror, desired["name"]))  # fmt: skip
        out.append(step("ovs-vsctl", "remove", "bridge", desired["name"], "mirrors", ref))
    return out


def additions(current, desired):
    out = []
    have, want = current.get("mirrors", {}), desired["mirrors"]
    refs = {}
    for i, mirror in enumerate(sorted(want)):
        spec = want[mirror]
        if have.get(mirror) == spec:
            continue
        words = ["name=" + mirror, "select_all=%s" % str(spec["select_all"]).lower()]
        for field, column in (("src", "select_src_port"), ("dst", "select_dst_port")):
            if spec[field]:
                words.append("%s=%s" % (column, ",".join(_ref(p, refs, out) for p in spec[field])))
        if spec["vlans"]:
            words.append("select_vlan=" + ovs.ints(spec["vlans"]))
        if spec["output_port"]:
            words.append("output_port=" + _ref(spec["output_port"], refs, out))
        else:
            words.append("output_vlan=%d" % spec["output_vlan"])
        ref = "@mirror%d" % i
        out.append(step("ovs-vsctl", "--id=" + ref, "create", "mirror", *words))
        out.append(step("ovs-vsctl", "add", "bridge", desired["name"], "mirrors", ref))
    return out


def _ref(port, refs, out):
    if port not in refs:
        refs[port] = "@port%d" % len(refs)
        out.append(step("ovs-vsctl", "--id=" + refs[port], "get", "port", port))
    return refs[port]


EXPORT_TABLES = {"netflow": "NetFlow", "sflow": "sFlow", "ipfix": "IPFIX"}


def export_steps(bridge, kind, now, want):
    if want == now or want["state"] == now["state"] == "absent":
        return []
    if want["state"] == "absent":
        return [step("ovs-vsctl", "clear", "bridge", bridge, kind)]
    words = ["targets=" + ",".join(want["targets"])]
    words += ["%s=%s" % (k, v) for k, v in sorted(want.items())
              if k not in ("targets", "state") and v is not None and v != now.get(k)]  # fmt: skip
    table = EXPORT_TABLES[kind]
    if now["state"] == "absent":  # no record yet
        return [
            step("ovs-vsctl", "--id=@" + kind, "create", table, *words),
            step("ovs-vsctl", "set", "bridge", bridge, "%s=@%s" % (kind, kind)),
        ]
    return [step("ovs-vsctl", "set", table, bridge, *words)]


def params(name, spec):
    out = {"name": name, "select_all": spec["select_all"]}
    for field, key in (("src", "select_src_ports"), ("dst", "select_dst_ports"),
                       ("vlans", "select_vlans")):  # fmt: skip
        if spec[field]:
            out[key] = spec[field]
    if spec["output_port"]:
        out["output_port"] = spec["output_port"]
    else:
        out["output_vlan"] = spec["output_vlan"]
    return out
