"""A VM port group's policy, declared once: the keys port_group and ovs_port_group take
(VLANs, security, their ports by name) and libvirt's own (a default group, bandwidth, a
filter), and the one mapping of that policy onto a libvirt network's `<portgroup>`
(compile_portgroup; policy_of goes back, for snapshots). The keys libvirt has no face
for are accepted and left to vnetctl's face (port_group, ovs_port_group).

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_libvirt_net, vnet_vlans
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_libvirt_net
    import vnet_vlans

ModuleError = vnet_core.ModuleError
RATES, DIRECTIONS = vnet_libvirt_net.RATES, vnet_libvirt_net.DIRECTIONS
empty_bandwidth, portgroup = vnet_libvirt_net.empty_bandwidth, vnet_libvirt_net.portgroup

RATE = {"type": "int", "range": [1, 4294967295]}
SHAPING = {"type": "dict", "options": {r: RATE for r in RATES}}
VID = {"type": "int", "range": list(vnet_vlans.VID_RANGE)}
SETTING = {"type": "str", "choices": ["reject", "accept"]}
# One group's policy: the keys port_group and ovs_port_group take, and libvirt's own.
POLICY = {
    "name": {"type": "objname", "required": True},
    "default": {"type": "bool"},  # the group of a VM whose interface names none
    "vlan": VID, "trunks": dict(VID, type="list", elements="int"), "tagged": vnet_vlans.VLAN_SET,
    "vlan_mode": {"type": "str", "choices": ["access", "trunk", "native-tagged",
                                              "native-untagged"]},
    "bandwidth": {"type": "dict", "options": dict.fromkeys(DIRECTIONS, SHAPING)},
    "filter": {"type": "objname"},  # an nwfilter; `none`: no filter
    "port_security": {"type": "bool"},
    "forged_transmits": SETTING, "mac_changes": SETTING, "promiscuous": SETTING,
    # vnetctl's face only (port_group, ovs_port_group by port name, the hook): no libvirt one
    "ports": {"type": "list", "elements": "str"}, "mtu": {"type": "int", "range": [68, 65535]},
    "isolated": {"type": "bool"}, "neigh_suppress": {"type": "bool"},
    "guests": {"type": "raw"}, "addresses": {"type": "raw"},
}  # fmt: skip
FILTERS = {"port_security": "clean-traffic", "forged_transmits": "no-mac-spoofing"}


def compile_portgroup(policy, ovs):
    """A policy (POLICY's keys) as a port group's fields. On a Linux bridge libvirt
    takes no VLAN (it refuses `<vlan>` in such a network): there the group's VLANs are
    vnetctl's face alone (port_group)."""
    where = "port group %s" % policy["name"]
    vlan, trunks, native = _policy_vlans(policy, where) if ovs else (None, (), None)
    bandwidth = empty_bandwidth()
    for direction, rates in (policy.get("bandwidth") or {}).items():
        rates = rates or {}
        if rates.get("average") is None and any(rates.get(r) for r in RATES):
            raise ModuleError(
                "%s: bandwidth %s needs an average (libvirt's rule)" % (where, direction)
            )
        bandwidth[direction] = {r: rates.get(r) for r in RATES}
    return portgroup(policy.get("default"), vlan, trunks, native, bandwidth, filter_of(policy))


def filter_of(policy):
    """The nwfilter a group's VMs carry: `filter` as given (`none`: none); else port
    security (MAC and IPs) is clean-traffic; else forged transmits rejected (the default,
    as on a distributed switch) is no-mac-spoofing. MAC address changes and promiscuous
    mode have no nwfilter: they are vnetctl's face alone."""
    if policy.get("filter") is not None:
        return None if policy["filter"] == "none" else policy["filter"]
    if policy.get("port_security"):
        return FILTERS["port_security"]
    default = "accept" if policy.get("port_security") is False else "reject"
    if (policy.get("forged_transmits") or default) == "reject":
        return FILTERS["forged_transmits"]
    return None


def _policy_vlans(policy, where):
    vlan, mode, tagged = policy.get("vlan"), policy.get("vlan_mode"), policy.get("tagged")
    if policy.get("trunks") is not None and tagged is not None:
        raise ModuleError("%s: trunks and tagged name the same VLANs; give one" % where)
    others = set(policy.get("trunks") or ()) | vnet_vlans.vids(tagged, where + " tagged")
    if mode is None and vlan is not None and others:
        if tagged is None:  # Open vSwitch would make it an access port and drop the trunks
            raise ModuleError("%s: vlan with trunks: say vlan_mode (native-untagged: "
                              "vlan untagged, the trunks tagged)" % where)  # fmt: skip
        mode = "native-untagged"  # port_group's words: the PVID untagged, the others tagged
    mode = mode or ("access" if vlan is not None else "trunk")
    if mode == "access":
        if vlan is None or others:
            raise ModuleError("%s: an access port has one vlan and no trunks" % where)
        return vlan, (), None
    if vlan is None:
        return (None, sorted(others), None) if mode == "trunk" else _no_native(where)
    if mode == "trunk":
        raise ModuleError("%s: vlan_mode trunk takes trunks, not vlan" % where)
    return vlan, sorted(others - {vlan}), mode.split("-", 1)[1]


def _no_native(where):
    raise ModuleError("%s: a native VLAN mode needs vlan (the native one)" % where)


def policy_of(name, fields):
    """A port group's fields as the policy that compiles to them (snapshots)."""
    out = {"name": name}
    if fields["default"]:
        out["default"] = True
    if fields["native"]:
        out.update(
            vlan=fields["vlan"], trunks=fields["trunks"], vlan_mode="native-" + fields["native"]
        )
    elif fields["vlan"] is not None:
        out["vlan"] = fields["vlan"]
    elif fields["trunks"]:
        out["trunks"] = fields["trunks"]
    shaping = {d: {r: v for r, v in rates.items() if v is not None}
               for d, rates in fields["bandwidth"].items()}  # fmt: skip
    if any(shaping.values()):
        out["bandwidth"] = {d: rates for d, rates in shaping.items() if rates}
    out["filter"] = fields["filter"] or "none"
    return out
