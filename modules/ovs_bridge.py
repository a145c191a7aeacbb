#!/usr/bin/python3
# WANT_JSON
"""Open vSwitch bridge: presence, datapath, fail mode, STP/RSTP, MTU (mtu_request), its
exact set of ports (physical, internal with addresses, VM ports by name or pattern) with
VLAN tag and trunks, its bonds (active-backup, balance-slb, balance-tcp with LACP), its
mirrors, and flow export (NetFlow v5, IPFIX, sFlow). Every OVSDB change of a task is one
ovs-vsctl transaction; addresses and routes follow in one `ip -batch`.

Bonds live here, not in a module of their own: a bond is one of the bridge's ports, so
the bridge's exact port set must know it (ports: vnet_ovs_ports; bonds, reconciled in
the bridge's one transaction: vnet_ovs_teaming; mirrors and flow export:
vnet_ovs_mirrors).

datapath_type `auto` (the default) is `netdev` (userspace) where the kernel has no
openvswitch datapath and `system` where it has: the plan states which.

A physical port that holds addresses when it joins the bridge hands them, and every
route through it (any table, both families), to the bridge's internal interface in the
same run, so the host stays reachable through it: a migration, not a cut (see vnet_ip).

The bridge owns the ports it declares (by name, and `type: vm` ones by name or pattern)
and leaves a VM's alone: a port the host's model calls a VM's (vnet_hostnet.vm_port: an
interface libvirt marked with external_ids attached-mac, iface-id or vm-id, one naming a
port group, a tap OVS did not make, a running domain's) and the task does not declare is
not read as one of the bridge's ports: never removed, never a change, never drift.
`detach` names ports to remove whatever they are; an undeclared port that is no VM's (an
old uplink) is removed as before.
"""

import ipaddress
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_hostnet, vnet_ip
    from ansible.module_utils import vnet_ovs_config as ovs
    from ansible.module_utils import vnet_ovs_mirrors as mirrors
    from ansible.module_utils import vnet_ovs_ports as ovs_ports
    from ansible.module_utils import vnet_ovs_teaming as teaming
    from ansible.module_utils import vnet_persist as bootcfg
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_hostnet
    import vnet_ip
    import vnet_ovs_config as ovs
    import vnet_ovs_mirrors as mirrors
    import vnet_ovs_ports as ovs_ports
    import vnet_ovs_teaming as teaming
    import vnet_persist as bootcfg

RESOURCE = "ovs bridge"
PORT_SPEC = {
    "name": {"type": "str", "required": True},  # an interface name; a pattern for type vm
    "type": {"type": "str", "choices": ["system", "internal", "vm"], "default": "system"},
    **ovs.VLAN_SPEC,
    "mtu": ovs.MTU,
    "addresses": {"type": "list", "elements": "str"},  # internal ports: CIDRs
}
ARGUMENT_SPEC = {
    "name": {"type": "ifname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "datapath_type": {"type": "str", "choices": ["auto", "system", "netdev"], "default": "auto"},
    "fail_mode": {"type": "str", "choices": ["standalone", "secure"]},
    "stp": {"type": "bool"},
    "rstp": {"type": "bool"},
    "mtu": ovs.MTU,
    "addresses": {"type": "list", "elements": "str"},  # of the bridge's own interface
    "ports": {"type": "list", "elements": "dict", "options": PORT_SPEC},
    "detach": {"type": "list", "elements": "ifname"},  # ports removed, VM ports included
    "bonds": {"type": "list", "elements": "dict", "options": teaming.BOND_SPEC},
    "mirrors": {"type": "list", "elements": "dict", "options": mirrors.MIRROR_SPEC},
    **{k: {"type": "dict", "options": v} for k, v in mirrors.EXPORT_SPECS.items()},
}
FACTS = {
    "ovs_config": ovs.CONFIG,
    **vnet_ip.ROUTES,  # the routes that move with a joining port's addresses
    **vnet_hostnet.VM_PORT_SOURCES,  # what tells a VM's port
    # the kernel's openvswitch datapath, loaded: /sys/module/openvswitch
    "ovs_kernel": host.command(
        ["ls", "/sys/module"], parse=lambda out: "openvswitch" in out.split(), optional=True
    ),
    **mirrors.FACTS,  # the OVSDB schema: which IPFIX settings this OVS has
}


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
    br = cfg["bridges"].get(name)
    internal = [p for p in (br or {}).get("ports", [])  # kept up when ports are not declared
                if cfg["interfaces"].get(p, {}).get("type") == "internal"]  # fmt: skip
    watched = sorted({name, *ports, *members, *internal} & set(facts.links))
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
    hypervisors = set(ovs_ports.vm_ports(params, cfg, facts))
    for port in br["ports"]:
        info = cfg["ports"][port]
        if port == name or any(_owned_elsewhere(ifaces.get(i, {})) for i in info["interfaces"]):
            continue
        if port in hypervisors:
            continue
        if len(info["interfaces"]) > 1:
            bonds[port] = teaming.read(cfg, port)
        else:
            plain.append(port)
    current["ports"] = sorted(plain + list(bonds))  # bonds too: drift sees an extra one
    current["port_config"] = {p: ovs_ports.read(cfg, p) for p in plain}
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
    bonds = teaming.desired(params, current, cfg)
    if bonds is not None:
        want["bonds"] = bonds
    want.setdefault("bonds", {})
    taken = {m for b in want["bonds"].values() for m in b["members"]} | set(want["bonds"])
    declared = ovs_ports.desired(params, current, cfg, facts, taken)
    if declared is not None:
        want["ports"], want["port_config"] = declared
    detach = set(params.get("detach") or [])
    for port in sorted(detach & set(want["bonds"])):
        raise host.ModuleError("bridge %s: %s is a bond; leave it out of bonds"
                               % (params["name"], port))  # fmt: skip
    plain = [p for p in want.get("ports", []) if p not in current.get("bonds", {})
             and p not in detach]  # fmt: skip
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
        vm_ports = ovs_ports.vm_ports(params, cfg, facts)  # a mirror may select them
        want["mirrors"], waiting = mirrors.desired(
            params["mirrors"], want, vm_ports, current, lambda p: ovs_ports.vm_declared(params, p)
        )
        want["mirror_names"] = sorted(want["mirrors"])
        want.update({"waiting": waiting} if waiting else {})  # vnet_host: said, not planned
    want.setdefault("mirrors", {})
    for kind in mirrors.EXPORT_SPECS:
        declared = params.get(kind)
        if declared is not None:
            want[kind] = mirrors.desired_export(kind, declared, current.get(kind),
                                                lambda: mirrors.schema(facts))  # fmt: skip
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
    vsctl += mirrors.removals(current, desired, config(facts)["bridges"].get(name) or {})
    vsctl += [host.step("ovs-vsctl", "del-port", name, b)
              for b in sorted(set(current.get("bonds") or {}) - set(desired["bonds"]))]  # fmt: skip
    vsctl += ovs_ports.steps(current, desired)
    vsctl += teaming.steps(current, desired)
    vsctl += mirrors.additions(current, desired)
    for kind in mirrors.EXPORT_SPECS:
        none = {"state": "absent"}
        vsctl += mirrors.export_steps(name, kind, current.get(kind, none), desired.get(kind, none))
    return vsctl + _ip_steps(current, desired, facts)


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
        params["ports"] = [ovs_ports.params(p, c) for p, c in sorted(state["port_config"].items())]
        params["bonds"] = [teaming.params(b, spec) for b, spec in sorted(state["bonds"].items())]
        declared = sorted(state["mirrors"].items())
        params["mirrors"] = [mirrors.params(m, spec) for m, spec in declared]
        for kind in mirrors.EXPORT_SPECS:
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


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
