#!/usr/bin/python3
# WANT_JSON
"""Open vSwitch bridge: presence, datapath, fail mode, STP/RSTP, MTU (mtu_request), its
exact set of ports (physical, internal with addresses, VM ports by name or pattern) with
VLAN tag and trunks, its bonds (active-backup, balance-slb, balance-tcp with LACP), its
mirrors, and flow export (NetFlow v5, IPFIX, sFlow). Every OVSDB change of a task is one
ovs-vsctl transaction; addresses and routes follow in one `ip -batch`.

Bonds live here, not in a module of their own: a bond is one of the bridge's ports, so
the bridge's exact port set must know it, and the bond is then created, changed and
re-membered in the bridge's single transaction. Every property of an existing bond is
reconciled (members with add-bond-iface/del-bond-iface); a change that makes LACP
negotiate again is said in the plan (an ovs-vsctl `comment` step).

datapath_type `auto` (the default) is `netdev` (userspace) where the kernel has no
openvswitch datapath and `system` where it has: the plan states which.

A physical port that holds addresses when it joins the bridge hands them, and every
route through it (any table, both families), to the bridge's internal interface in the
same run, so the host stays reachable through it: a migration, not a cut (see vnet_ip).
"""

import fnmatch
import ipaddress
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_ip
    from ansible.module_utils import vnet_ovs_config as ovs
    from ansible.module_utils import vnet_persist as bootcfg
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_ip
    import vnet_ovs_config as ovs
    import vnet_persist as bootcfg

RESOURCE = "ovs bridge"
VLAN_MODES = ["access", "trunk", "native-tagged", "native-untagged"]
VLAN = {"type": "int", "range": [0, 4095]}
MTU = {"type": "int", "range": [68, 65535]}
PORT_SPEC = {
    "name": {"type": "str", "required": True},  # an interface name; a pattern for type vm
    "type": {"type": "str", "choices": ["system", "internal", "vm"], "default": "system"},
    "tag": VLAN,
    "trunks": {"type": "list", "elements": "int", "range": [0, 4095]},
    "vlan_mode": {"type": "str", "choices": VLAN_MODES},
    "mtu": MTU,
    "addresses": {"type": "list", "elements": "str"},  # internal ports: CIDRs
}
BOND_SPEC = {
    "name": {"type": "ifname", "required": True},
    "members": {"type": "list", "elements": "ifname", "required": True},
    "mode": {"type": "str", "choices": ["active-backup", "balance-slb", "balance-tcp"]},
    "lacp": {"type": "str", "choices": ["off", "active", "passive"]},
    "lacp_time": {"type": "str", "choices": ["fast", "slow"]},
    "lacp_fallback_ab": {"type": "bool"},
    "primary": {"type": "ifname"},  # active-backup: the member used while it is up
    "updelay": {"type": "int", "range": [0, 3600000]},  # ms
    "downdelay": {"type": "int", "range": [0, 3600000]},
    "tag": VLAN,
    "trunks": {"type": "list", "elements": "int", "range": [0, 4095]},
    "vlan_mode": {"type": "str", "choices": VLAN_MODES},
    "mtu": MTU,
}
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
    },
}
ARGUMENT_SPEC = {
    "name": {"type": "ifname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "datapath_type": {"type": "str", "choices": ["auto", "system", "netdev"], "default": "auto"},
    "fail_mode": {"type": "str", "choices": ["standalone", "secure"]},
    "stp": {"type": "bool"},
    "rstp": {"type": "bool"},
    "mtu": MTU,
    "addresses": {"type": "list", "elements": "str"},  # of the bridge's own interface
    "ports": {"type": "list", "elements": "dict", "options": PORT_SPEC},
    "bonds": {"type": "list", "elements": "dict", "options": BOND_SPEC},
    "mirrors": {"type": "list", "elements": "dict", "options": MIRROR_SPEC},
    **{k: {"type": "dict", "options": v} for k, v in EXPORT_SPECS.items()},
}
FACTS = {
    "ovs_config": ovs.CONFIG,
    **vnet_ip.ROUTES,  # the routes that move with a joining port's addresses
    # the kernel's openvswitch datapath, loaded: /sys/module/openvswitch
    "ovs_kernel": host.command(
        ["ls", "/sys/module"], parse=lambda out: "openvswitch" in out.split(), optional=True
    ),
}
BOND_DEFAULTS = {"mode": "active-backup", "lacp": "off", "lacp_time": "slow",
                 "lacp_fallback_ab": False, "primary": None, "updelay": 0,
                 "downdelay": 0}  # fmt: skip
BOND_COLUMNS = {"mode": "bond_mode", "lacp": "lacp", "updelay": "bond_updelay",
                "downdelay": "bond_downdelay", "lacp_time": "other_config:lacp-time",
                "lacp_fallback_ab": "other_config:lacp-fallback-ab",
                "primary": "other_config:bond-primary"}  # fmt: skip
LACP_FIELDS = ("mode", "lacp", "lacp_time", "members")


def config(facts):
    cfg = facts.get("ovs_config")
    if cfg is None:
        raise host.ModuleError("Open vSwitch is not running on this host (no ovs-vsctl answer)")
    return cfg


def _owned_elsewhere(iface):
    """Ports another module owns on this bridge: a VXLAN mesh's tunnel ports."""
    return "vnetctl-mesh" in iface.get("external_ids", {})


def _declared_names(params):
    ports = [p["name"] for p in params.get("ports") or [] if p["type"] != "vm"]
    members = [m for b in params.get("bonds") or [] for m in b["members"]]
    return ports, members


def read(params, facts):
    """The bridge, its ports, bonds, mirrors and flow export; plus what steps change
    beside it: addresses of the bridge interface, internal and joining physical ports,
    the routes through them, and whether those links are up."""
    name, cfg = params["name"], config(facts)
    ports, members = _declared_names(params)
    watched = sorted({name, *ports, *members} & set(facts.links))
    br = cfg["bridges"].get(name)
    current = {"name": name, "state": "present" if br else "absent"}
    ip = vnet_ip.state(facts, watched, elsewhere=False)  # global addresses, movable routes
    current["addresses"], current["routes"] = vnet_ip.split(ip)
    current["up"] = {d: facts.admin_up(d) for d in watched}
    if br is None:
        return current
    current.update({k: br[k] for k in ("datapath_type", "fail_mode", "stp", "rstp")})
    current.update({k: br[k] for k in ("netflow", "sflow", "ipfix", "mirrors")})
    current["mirror_names"] = sorted(br["mirrors"])  # a list: drift sees an extra mirror
    ifaces = cfg["interfaces"]
    current["mtu"] = ifaces.get(name, {}).get("mtu_request")
    plain, bonds = [], {}
    for port in br["ports"]:
        info = cfg["ports"][port]
        if port == name or any(_owned_elsewhere(ifaces.get(i, {})) for i in info["interfaces"]):
            continue
        vlan = {k: info[k] for k in ovs.VLAN_FIELDS}
        if len(info["interfaces"]) > 1:
            bond = {k: info[k] for k in ("lacp", "lacp_time", "lacp_fallback_ab", "primary",
                                         "updelay", "downdelay")}  # fmt: skip
            bond.update(vlan, mode=info["bond_mode"] or "active-backup",
                        members=info["interfaces"])  # fmt: skip
            bond["mtu"] = {i: ifaces.get(i, {}).get("mtu_request") for i in info["interfaces"]}
            bonds[port] = bond
        else:
            plain.append(port)
    current["ports"] = sorted(plain + list(bonds))  # bonds too: drift sees an extra one
    current["port_config"] = {
        p: dict({k: cfg["ports"][p][k] for k in ovs.VLAN_FIELDS},
                type=ifaces.get(p, {}).get("type", "system"),
                mtu=ifaces.get(p, {}).get("mtu_request"))
        for p in plain
    }  # fmt: skip
    current["bonds"] = bonds
    return current


def desired(params, current, facts):
    if params["state"] == "absent":
        return _absent(current)
    cfg = config(facts)
    want = {k: v for k, v in current.items() if k not in ("addresses", "routes", "up")}
    want["state"] = "present"
    want["datapath_type"] = _datapath(params["datapath_type"], facts)
    for field in ("fail_mode", "stp", "rstp", "mtu"):
        if params.get(field) is not None:
            want[field] = params[field]
    want.setdefault("fail_mode", "standalone")
    want.setdefault("stp", False)
    want.setdefault("rstp", False)
    bonds = _desired_bonds(params, current, cfg)
    if bonds is not None:
        want["bonds"] = bonds
    want.setdefault("bonds", {})
    taken = {m for b in want["bonds"].values() for m in b["members"]} | set(want["bonds"])
    ports = _desired_ports(params, current, cfg, facts, taken)
    if ports is not None:
        want["ports"], want["port_config"] = ports
    plain = [p for p in want.get("ports", []) if p not in current.get("bonds", {})]
    want["ports"] = sorted(set(plain) | set(want["bonds"]))
    want["port_config"] = {p: c for p, c in want.get("port_config", {}).items()
                           if p in want["ports"]}  # fmt: skip
    if params.get("mtu") is not None:  # the bridge's MTU: declared ports and bond members
        for cfg_ in want["port_config"].values():
            if cfg_.get("declared") and not cfg_.get("vm") and cfg_.get("declared_mtu") is None:
                cfg_["mtu"] = params["mtu"]
        for bond in want["bonds"].values():
            bond["mtu"] = {m: bond.get("declared_mtu") or params["mtu"] for m in bond["members"]}
    for entry in list(want["port_config"].values()) + list(want["bonds"].values()):
        for marker in ("declared_mtu", "declared", "vm"):
            entry.pop(marker, None)
    if params.get("mirrors") is not None:
        want["mirrors"] = _desired_mirrors(params["mirrors"], want)
        want["mirror_names"] = sorted(want["mirrors"])
    want.setdefault("mirrors", {})
    for kind in EXPORT_SPECS:
        declared = params.get(kind)
        if declared is not None:
            want[kind] = _desired_export(kind, declared, current.get(kind))
    _link_state(params, current, want, facts)
    return want


def _absent(current):
    """The bridge goes, and its interface and internal ports with it; what it leaves
    (physical ports and their addresses) stays as it is."""
    gone = {current["name"]} | {
        p for p, c in current.get("port_config", {}).items() if c["type"] == "internal"
    }
    want = {"name": current["name"], "state": "absent"}
    for key in ("addresses", "routes", "up"):
        if key in current:
            want[key] = {d: v for d, v in current[key].items() if d not in gone}
    return want


def _datapath(declared, facts):
    if declared != "auto":
        if declared == "system" and facts.get("ovs_kernel") is False:
            raise host.ModuleError(
                "datapath_type system: this kernel has no openvswitch datapath "
                "(use netdev, the userspace datapath, or auto)"
            )
        return declared
    return "system" if facts.get("ovs_kernel") else "netdev"


def _check_free(dev, name, cfg, facts, what):
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
        raise host.ModuleError("%s %s is %s; remove it there first" % (what, dev, where))
    master = (facts.link(dev) or {}).get("master")
    if master and facts.kind(master) != "openvswitch":
        raise host.ModuleError("%s %s is a port of %s; remove it there first" % (what, dev, master))


def _desired_ports(params, current, cfg, facts, taken):
    declared = params.get("ports")
    if declared is None:
        return None
    name = params["name"]
    have = current.get("port_config", {})
    names, conf = [], {}
    for port in declared:
        kind = port["type"]
        if kind == "vm":
            pattern = port["name"]
            matches = [p for p in current.get("ports", []) if fnmatch.fnmatchcase(p, pattern)]
            matches += [
                d for d in sorted(facts.links)
                if fnmatch.fnmatchcase(d, pattern) and d not in matches and d != name
                and not cfg["ports"].get(d) and not facts.link(d).get("master")
            ]  # fmt: skip
        else:
            host.check_ifname(port["name"], "port name")
            matches = [port["name"]]
            if kind == "system" and facts.link(port["name"]) is None:
                raise host.ModuleError("port %s of bridge %s does not exist on this host"
                                       % (port["name"], name))  # fmt: skip
            if kind == "system":
                _check_free(port["name"], name, cfg, facts, "port")
        for dev in matches:
            if dev in taken or dev == name:
                raise host.ModuleError("%s is declared twice on bridge %s" % (dev, name))
            if port.get("addresses") is not None and kind != "internal":
                raise host.ModuleError("port %s: addresses are for internal ports" % dev)
            entry = dict(have.get(dev, {}), type="internal" if kind == "internal" else "system")
            entry.update(declared=True, vm=kind == "vm")
            for field in ovs.VLAN_FIELDS:
                if port.get(field) is not None:
                    entry[field] = port[field]
            if port.get("mtu") is not None:
                entry["mtu"] = entry["declared_mtu"] = port["mtu"]
            names.append(dev)
            taken.add(dev)
            conf[dev] = entry
    return names, conf


def _desired_bonds(params, current, cfg):
    declared = params.get("bonds")
    if declared is None:
        return None
    have = current.get("bonds", {})
    out = {}
    for bond in declared:
        if len(set(bond["members"])) < 2:
            raise host.ModuleError("bond %s needs at least two members" % bond["name"])
        for member in bond["members"]:
            _check_free(member, params["name"], cfg, _NoLinks(), "bond member")
        old = have.get(bond["name"], BOND_DEFAULTS)
        entry = {k: v for k, v in old.items() if k != "mtu"}
        entry["mtu"] = dict(old.get("mtu", {}))
        for field in list(BOND_DEFAULTS) + list(ovs.VLAN_FIELDS):
            if bond.get(field) is not None:
                entry[field] = bond[field]
        entry["members"] = sorted(set(bond["members"]))
        entry["mtu"] = {m: entry["mtu"].get(m) for m in entry["members"]}
        if bond.get("mtu") is not None:
            entry["declared_mtu"] = bond["mtu"]
            entry["mtu"] = dict.fromkeys(entry["members"], bond["mtu"])
        if entry["primary"] is not None and entry["primary"] not in entry["members"]:
            raise host.ModuleError("bond %s: primary %s is not one of its members"
                                   % (bond["name"], entry["primary"]))  # fmt: skip
        if entry["mode"] == "balance-tcp" and entry["lacp"] == "off":
            raise host.ModuleError("bond %s: balance-tcp needs LACP (lacp: active or passive)"
                                   % bond["name"])  # fmt: skip
        out[bond["name"]] = entry
    return out


class _NoLinks:
    """Bond members are checked against OVSDB only (a member need not be up or known)."""

    def link(self, _name):
        return None


def _desired_mirrors(declared, want):
    ports = set(want["ports"])
    out = {}
    for mirror in declared:
        entry = {
            "select_all": mirror["select_all"],
            "src": sorted(mirror.get("select_src_ports") or []),
            "dst": sorted(mirror.get("select_dst_ports") or []),
            "vlans": sorted(mirror.get("select_vlans") or []),
            "output_port": mirror.get("output_port"),
            "output_vlan": mirror.get("output_vlan"),
        }
        for port in entry["src"] + entry["dst"] + [entry["output_port"] or want["name"]]:
            if port not in ports and port != want["name"]:
                raise host.ModuleError("mirror %s: %s is not a port of bridge %s"
                                       % (mirror["name"], port, want["name"]))  # fmt: skip
        if (entry["output_port"] is None) == (entry["output_vlan"] is None):
            raise host.ModuleError("mirror %s: give output_port or output_vlan (one)"
                                   % mirror["name"])  # fmt: skip
        out[mirror["name"]] = entry
    return out


def _target(text, kind):
    address, _, port = (text or "").rpartition(":")
    try:
        host.ip_value(ipaddress.ip_address, address.strip("[]"))
        if not 0 < int(port) < 65536:
            raise ValueError(port)
    except ValueError:
        raise host.ModuleError("%s target %r is not ADDRESS:PORT" % (kind, text)) from None
    return text


def _desired_export(kind, declared, current):
    targets = sorted(_target(t, kind) for t in declared.get("targets") or [])
    if not targets:
        return {"state": "absent"}
    out = dict(current or {}) if (current or {}).get("state") == "present" else {}
    out.update(state="present", targets=targets)
    out.update({k: v for k, v in declared.items() if k != "targets" and v is not None})
    return out


def _link_state(params, current, want, facts):
    """Internal ports and joining physical ports up; declared addresses on the bridge
    (exactly) and on internal ports; a joining physical port's addresses and routes to
    the bridge's interface (vnet_ip.moved: the migration every module shares)."""
    name = params["name"]
    up = dict(current.get("up", {}))
    joining = [p for p in want["port_config"] if p not in current.get("ports", [])]
    internal = [p for p, c in want["port_config"].items() if c["type"] == "internal"]
    for dev in [name] + internal:
        up[dev] = True
    moving = []
    for dev in joining + [m for b in want["bonds"].values() for m in b["members"]]:
        if dev not in current.get("up", {}):
            continue  # not declared here (VM ports are their hypervisor's to bring up)
        up[dev] = True
        if dev not in internal:
            moving.append(dev)
    declared = params.get("addresses")
    ip = vnet_ip.joined(current.get("addresses", {}), current.get("routes", {}))
    if moving or declared is not None:
        ip = vnet_ip.moved(ip, moving, name, None if declared is None else map(_cidr, declared))
    addresses, routes = vnet_ip.split(ip)
    for port in params.get("ports") or []:
        if port["type"] == "internal" and port.get("addresses") is not None:
            addresses[port["name"]] = sorted(_cidr(a) for a in port["addresses"])
    want["addresses"], want["routes"], want["up"] = addresses, routes, up


def _cidr(text):
    try:
        return str(host.ip_value(ipaddress.ip_interface, text))
    except ValueError:
        raise host.ModuleError("%r is not an address with a prefix length" % text) from None


# ---- steps -------------------------------------------------------------------------


def steps(current, desired, facts):
    name = desired["name"]
    vsctl = []
    if desired["state"] == "absent":
        if current["state"] == "present":
            vsctl.append(host.step("ovs-vsctl", "--if-exists", "del-br", name))
        return vsctl + _ip_steps(current, desired, facts)
    creating = current["state"] == "absent"
    if creating:
        vsctl.append(host.step("ovs-vsctl", "add-br", name))
    if current.get("datapath_type") != desired["datapath_type"]:
        dp = "datapath_type=" + desired["datapath_type"]
        vsctl.append(host.step("ovs-vsctl", "set", "bridge", name, dp))
    for field, column in (("stp", "stp_enable"), ("rstp", "rstp_enable")):
        if current.get(field, False) != desired[field]:
            value = "%s=%s" % (column, str(desired[field]).lower())
            vsctl.append(host.step("ovs-vsctl", "set", "bridge", name, value))
    if current.get("fail_mode", "standalone") != desired["fail_mode"]:
        vsctl.append(host.step("ovs-vsctl", "set-fail-mode", name, desired["fail_mode"]))
    vsctl += ovs.mtu_steps(name, current.get("mtu"), desired.get("mtu"))
    vsctl += _mirror_removals(current, desired, facts)
    vsctl += [host.step("ovs-vsctl", "del-port", name, b)
              for b in sorted(set(current.get("bonds") or {}) - set(desired["bonds"]))]  # fmt: skip
    vsctl += _port_steps(current, desired)
    vsctl += _bond_steps(current, desired)
    vsctl += _mirror_additions(current, desired)
    for kind in EXPORT_SPECS:
        none = {"state": "absent"}
        vsctl += _export_steps(name, kind, current.get(kind, none), desired.get(kind, none))
    return vsctl + _ip_steps(current, desired, facts)


def _port_steps(current, desired):
    name, out = desired["name"], []
    have, conf = current.get("port_config", {}), desired["port_config"]
    old = set(current.get("port_config", {}))
    for port in sorted(old - set(desired["ports"])):
        out.append(host.step("ovs-vsctl", "del-port", name, port))
    for port in sorted(conf):
        want = conf[port]
        now = have.get(port, {})
        if port not in old:
            out.append(host.step("ovs-vsctl", "add-port", name, port))
            now = {"type": "system"}
        if want["type"] != now.get("type"):
            out.append(host.step("ovs-vsctl", "set", "interface", port, "type=" + want["type"]))
        out += ovs.port_vlan_steps(port, now, want)
        out += ovs.mtu_steps(port, now.get("mtu"), want.get("mtu"))
    return out


def _bond_steps(current, desired):
    name, out = desired["name"], []
    have, want_all = current.get("bonds") or {}, desired["bonds"]
    for bond, want in sorted(want_all.items()):
        now = have.get(bond)
        if now is None:  # every property set: OVS's own defaults are never assumed
            out.append(host.step("ovs-vsctl", "add-bond", name, bond, *want["members"]))
            now = dict(dict.fromkeys(BOND_DEFAULTS), members=want["members"], mtu={})
        else:
            added = sorted(set(want["members"]) - set(now["members"]))
            gone = sorted(set(now["members"]) - set(want["members"]))
            out += [host.step("ovs-vsctl", "add-bond-iface", bond, m) for m in added]
            out += [host.step("ovs-vsctl", "del-bond-iface", bond, m) for m in gone]
            redo = [f for f in LACP_FIELDS if _differs(now.get(f), want[f])]
            if redo and (now["lacp"] != "off" or want["lacp"] != "off"):
                why = ",".join("%s:%s->%s" % (f, _show(now.get(f)), _show(want[f]))
                               for f in redo)  # fmt: skip
                out.append(host.step("ovs-vsctl", "comment", bond, "LACP", "re-negotiates", why))
        sets, clears = [], []
        for field, column in BOND_COLUMNS.items():
            if _differs(now.get(field), want[field]):
                value = want[field]
                if value is None:  # only primary may be unset
                    clears.append(column.split(":")[1])
                    continue
                value = str(value).lower() if isinstance(value, bool) else value
                sets.append("%s=%s" % (column, value))
        if sets:
            out.append(host.step("ovs-vsctl", "set", "port", bond, *sets))
        if clears:
            out.append(host.step("ovs-vsctl", "remove", "port", bond, "other_config", *clears))
        out += ovs.port_vlan_steps(bond, now, want)
        for member in want["members"]:
            out += ovs.mtu_steps(member, now["mtu"].get(member), want["mtu"].get(member))
    return out


def _differs(a, b):
    return sorted(a) != sorted(b) if isinstance(a, list) and isinstance(b, list) else a != b


def _show(value):
    return "+".join(value) if isinstance(value, list) else str(value)


def _mirror_removals(current, desired, facts):
    """Mirrors that go or change, by name; one whose name no command may hold (`--`,
    made before names were checked, or by hand) by its uuid, so it cannot break a run."""
    out = []
    have, want = current.get("mirrors", {}), desired["mirrors"]
    bridge = config(facts)["bridges"].get(desired["name"]) or {}
    for i, mirror in enumerate(sorted(have)):
        if want.get(mirror) == have[mirror]:
            continue
        if host.name_problem("objname", mirror) is None:
            ref = "@old%d" % i
            out.append(host.step("ovs-vsctl", "--id=" + ref, "get", "mirror", mirror))
        else:
            ref = (bridge.get("mirror_uuids") or {}).get(mirror)
            if ref is None:
                raise host.ModuleError("mirror %r on %s cannot be named to ovs-vsctl and its "
                                       "uuid is unknown: remove it by hand"
                                       % (mirror, desired["name"]))  # fmt: skip
        out.append(host.step("ovs-vsctl", "remove", "bridge", desired["name"], "mirrors", ref))
    return out


def _mirror_additions(current, desired):
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
            words.append("select_vlan=" + ovs._ints(spec["vlans"]))
        if spec["output_port"]:
            words.append("output_port=" + _ref(spec["output_port"], refs, out))
        else:
            words.append("output_vlan=%d" % spec["output_vlan"])
        ref = "@mirror%d" % i
        out.append(host.step("ovs-vsctl", "--id=" + ref, "create", "mirror", *words))
        out.append(host.step("ovs-vsctl", "add", "bridge", desired["name"], "mirrors", ref))
    return out


def _ref(port, refs, out):
    if port not in refs:
        refs[port] = "@port%d" % len(refs)
        out.append(host.step("ovs-vsctl", "--id=" + refs[port], "get", "port", port))
    return refs[port]


EXPORT_TABLES = {"netflow": "NetFlow", "sflow": "sFlow", "ipfix": "IPFIX"}


def _export_steps(bridge, kind, now, want):
    if want == now or want["state"] == now["state"] == "absent":
        return []
    if want["state"] == "absent":
        return [host.step("ovs-vsctl", "clear", "bridge", bridge, kind)]
    words = ["targets=" + ",".join(want["targets"])]
    words += ["%s=%s" % (k, v) for k, v in sorted(want.items())
              if k not in ("targets", "state") and v is not None and v != now.get(k)]  # fmt: skip
    table = EXPORT_TABLES[kind]
    if now["state"] == "absent":  # no record yet
        return [
            host.step("ovs-vsctl", "--id=@" + kind, "create", table, *words),
            host.step("ovs-vsctl", "set", "bridge", bridge, "%s=@%s" % (kind, kind)),
        ]
    return [host.step("ovs-vsctl", "set", table, bridge, *words)]


def _ip_steps(current, desired, facts):
    """Interfaces up (a route needs its device up), then addresses and routes as vnet_ip
    moves them (added before any is removed: a moving address is never gone), then
    interfaces down."""
    out = []
    for dev, wanted_up in sorted(desired.get("up", {}).items()):
        if wanted_up and not current.get("up", {}).get(dev):
            out.append(host.step("ip", "link", "set", "dev", dev, "up"))
    out += vnet_ip.steps(_ip_state(current), _ip_state(desired), facts)
    for dev, wanted_up in sorted(desired.get("up", {}).items()):
        if not wanted_up and current.get("up", {}).get(dev) and facts.link(dev) is not None:
            out.append(host.step("ip", "link", "set", "dev", dev, "down"))
    return out


def _ip_state(state):
    """vnet_ip's form of the state's addresses and routes: {dev: {addresses, routes}}."""
    return vnet_ip.joined(state.get("addresses", {}), state.get("routes", {}))


def planned_addresses(params):
    """{device: {"addresses", "mtu"}} this task gives: the fleet's preflight plans later
    tasks (a VXLAN mesh whose VTEP is on this bridge) on facts that have them."""
    out = {}
    if params.get("state", "present") == "absent":
        return out
    mtu = params.get("mtu") or 1500
    if params.get("addresses"):
        out[params["name"]] = {"addresses": list(params["addresses"]), "mtu": mtu}
    for port in params.get("ports") or []:
        if port.get("type") == "internal" and port.get("addresses"):
            out[port["name"]] = {"addresses": list(port["addresses"]),
                                 "mtu": port.get("mtu") or mtu}  # fmt: skip
    return out


# ---- snapshot ----------------------------------------------------------------------


def persist(params, desired, facts, units):
    """Open vSwitch keeps bridges, ports and bonds in its own database; the kernel keeps
    the addresses on the bridge's interface and its internal ports, and whether they are
    up: those are networkd's at boot (see vnet_persist), set on each interface as OVS
    makes it. Addresses and routes moved from a joining port are the bridge's. A physical
    port (or bond member) is up, as a port: the foreign file that gives it addresses does
    not configure it at boot (vnet_persist)."""
    if desired.get("state") != "present":
        return
    name = params["name"]
    internal = [p["name"] for p in params.get("ports") or [] if p["type"] == "internal"]
    up = bootcfg.link_section([("ActivationPolicy", "up")])
    for dev in [name] + internal:
        units.network(dev, up + bootcfg.ip_sections(_ip_state(desired).get(dev) or {}))
    physical = [p["name"] for p in params.get("ports") or [] if p["type"] == "system"]
    for dev in physical + [m for b in params.get("bonds") or [] for m in b["members"]]:
        units.network(dev, up, port=name)


SNAPSHOT_ORDER = 15  # before a mesh's segments use a bridge as their underlay


def snapshot(facts):
    cfg = ovs.recorded(facts)
    if cfg is None:
        return []
    out = []
    for name in sorted(cfg["bridges"]):
        if _mesh_bridge(name, cfg):
            continue  # made by a vxlan_mesh: its snapshot declares it
        state = read({"name": name, "ports": [], "bonds": []}, facts)
        params = {"name": name, "datapath_type": state["datapath_type"]}
        params.update({k: state[k] for k in ("fail_mode", "stp", "rstp")})
        if state.get("mtu") is not None:
            params["mtu"] = state["mtu"]
        params["ports"] = [_port_params(p, c) for p, c in sorted(state["port_config"].items())]
        params["bonds"] = [_bond_params(b, spec) for b, spec in sorted(state["bonds"].items())]
        mirrors = sorted(state["mirrors"].items())
        params["mirrors"] = [_mirror_params(m, spec) for m, spec in mirrors]
        for kind in EXPORT_SPECS:
            found = state[kind]
            params[kind] = {k: v for k, v in found.items() if v is not None and k != "state"}
            params[kind].setdefault("targets", [])
        params["addresses"] = vnet_ip.addresses(facts, name)
        out.append(params)
    return out


def _mesh_bridge(name, cfg):
    ports = cfg["bridges"][name]["ports"]
    others = [p for p in ports if p != name]
    return bool(others) and all(
        _owned_elsewhere(cfg["interfaces"].get(p, {})) or p.startswith("vnp") for p in others
    )


def _port_params(port, conf):
    out = {"name": port, "type": conf["type"] if conf["type"] == "internal" else "system"}
    out.update({k: conf[k] for k in ovs.VLAN_FIELDS if conf[k] not in (None, [])})
    if conf.get("mtu") is not None:
        out["mtu"] = conf["mtu"]
    return out


def _bond_params(name, spec):
    out = {"name": name, "members": spec["members"]}
    out.update({k: spec[k] for k in BOND_DEFAULTS})
    out.update({k: spec[k] for k in ovs.VLAN_FIELDS if spec[k] not in (None, [])})
    mtus = set(spec["mtu"].values())
    if len(mtus) == 1 and None not in mtus:
        out["mtu"] = mtus.pop()
    return out


def _mirror_params(name, spec):
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


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
