"""Open vSwitch bonds as ovs_bridge declares them: a bond is one of the bridge's
ports, created, changed and re-membered in the bridge's one ovs-vsctl transaction. Every
property of an existing bond is reconciled (members with add-bond-iface and
del-bond-iface); a change that makes LACP negotiate again is said in the plan (an
ovs-vsctl `comment` step). OVS's own defaults are never assumed: a new bond gets every
property set.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
    from ansible.module_utils import vnet_ovs_config as ovs
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_ovs_config as ovs

ModuleError, step = vnet_core.ModuleError, vnet_core.step

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
    **ovs.VLAN_SPEC,
    "mtu": ovs.MTU,
}
BOND_DEFAULTS = {"mode": "active-backup", "lacp": "off", "lacp_time": "slow",
                 "lacp_fallback_ab": False, "primary": None, "updelay": 0,
                 "downdelay": 0}  # fmt: skip
BOND_COLUMNS = {"mode": "bond_mode", "lacp": "lacp", "updelay": "bond_updelay",
                "downdelay": "bond_downdelay", "lacp_time": "other_config:lacp-time",
                "lacp_fallback_ab": "other_config:lacp-fallback-ab",
                "primary": "other_config:bond-primary"}  # fmt: skip
LACP_FIELDS = ("mode", "lacp", "lacp_time", "members")
# the port's columns a bond has (the others: a port's)
BOND_PORT_FIELDS = ("lacp", "lacp_time", "lacp_fallback_ab", "primary", "updelay", "downdelay")


def read(cfg, port):
    """A bond (an OVSDB port of more than one interface) as state."""
    info, interfaces = cfg["ports"][port], cfg["interfaces"]
    bond = {k: info[k] for k in BOND_PORT_FIELDS}
    bond.update({k: info[k] for k in ovs.VLAN_FIELDS})
    bond.update(mode=info["bond_mode"] or "active-backup", members=info["interfaces"])
    bond["mtu"] = {i: interfaces.get(i, {}).get("mtu_request") for i in info["interfaces"]}
    return bond


def desired(params, current, cfg):
    declared = params.get("bonds")
    if declared is None:
        return None
    have = current.get("bonds", {})
    out = {}
    for bond in declared:
        if len(set(bond["members"])) < 2:
            raise ModuleError("bond %s needs at least two members" % bond["name"])
        for member in bond["members"]:
            ovs.check_free(member, params["name"], cfg, _NoLinks(), "bond member")
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
            raise ModuleError("bond %s: primary %s is not one of its members"
                                   % (bond["name"], entry["primary"]))  # fmt: skip
        if entry["mode"] == "balance-tcp" and entry["lacp"] == "off":
            raise ModuleError("bond %s: balance-tcp needs LACP (lacp: active or passive)"
                                   % bond["name"])  # fmt: skip
        out[bond["name"]] = entry
    return out


class _NoLinks:
    """Bond members are checked against OVSDB only (a member need not be up or known)."""

    def link(self, _name):
        return None


def steps(current, desired):
    name, out = desired["name"], []
    have, want_all = current.get("bonds") or {}, desired["bonds"]
    for bond, want in sorted(want_all.items()):
        now = have.get(bond)
        if now is None:  # every property set: OVS's own defaults are never assumed
            out.append(step("ovs-vsctl", "add-bond", name, bond, *want["members"]))
            now = dict(dict.fromkeys(BOND_DEFAULTS), members=want["members"], mtu={})
        else:
            added = sorted(set(want["members"]) - set(now["members"]))
            gone = sorted(set(now["members"]) - set(want["members"]))
            out += [step("ovs-vsctl", "add-bond-iface", bond, m) for m in added]
            out += [step("ovs-vsctl", "del-bond-iface", bond, m) for m in gone]
            redo = [f for f in LACP_FIELDS if _differs(now.get(f), want[f])]
            if redo and (now["lacp"] != "off" or want["lacp"] != "off"):
                why = ",".join("%s:%s->%s" % (f, _show(now.get(f)), _show(want[f]))
                               for f in redo)  # fmt: skip
                out.append(step("ovs-vsctl", "comment", bond, "LACP", "re-negotiates", why))
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
            out.append(step("ovs-vsctl", "set", "port", bond, *sets))
        if clears:
            out.append(step("ovs-vsctl", "remove", "port", bond, "other_config", *clears))
        out += ovs.port_vlan_steps(bond, now, want)
        for member in want["members"]:
            out += ovs.mtu_steps(member, now["mtu"].get(member), want["mtu"].get(member))
    return out


def _differs(a, b):
    return sorted(a) != sorted(b) if isinstance(a, list) and isinstance(b, list) else a != b


def _show(value):
    return "+".join(value) if isinstance(value, list) else str(value)


def params(name, spec):
    out = {"name": name, "members": spec["members"]}
    out.update({k: spec[k] for k in BOND_DEFAULTS})
    out.update({k: spec[k] for k in ovs.VLAN_FIELDS if spec[k] not in (None, [])})
    mtus = set(spec["mtu"].values())
    if len(mtus) == 1 and None not in mtus:
        out["mtu"] = mtus.pop()
    return out
