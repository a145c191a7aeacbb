#!/usr/bin/python3
# WANT_JSON
"""Linux bridge: presence, ports, MTU (with its ports), STP and timers, admin state, and
its addresses.

Re-applying bounces nothing: only fields that differ produce commands, and the bridge
is never set down/up unless its admin state is what changed. A new port that holds
addresses (the host's own NIC, typically) hands them and the routes through it to the
bridge in the same batch, so the host stays reachable (see vnet_ip), and gets them back
the same way when it leaves as the bridge's last port or the bridge is deleted (a
migration undone); `addresses` declares the bridge's own addresses exactly (and keeps
them on the bridge).
"""

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_ip
    from ansible.module_utils import vnet_persist as bootcfg
    from ansible.module_utils import vnet_vlans as vlans
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_ip
    import vnet_persist as bootcfg
    import vnet_vlans as vlans

RESOURCE = "bridge"
ARGUMENT_SPEC = {
    "name": {"type": "ifname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "ports": {"type": "list", "elements": "ifname"},
    "mtu": {"type": "int", "range": [68, 65535]},
    "stp": {"type": "bool"},
    # seconds, like brctl; the kernel's ranges (net/bridge/br_stp_if.c), checked before
    # anything changes; forward_delay is 2..30 while STP is on (_check_forward_delay)
    "forward_delay": {"type": "float", "range": [0, 30]},
    "hello_time": {"type": "float", "range": [1, 10]},
    "max_age": {"type": "float", "range": [6, 40]},
    "priority": {"type": "int", "range": [0, 65535]},
    "admin_state": {"type": "str", "choices": ["up", "down"], "default": "up"},
    "addresses": {"type": "list", "elements": "str"},  # ["10.0.0.5/24", ...], exact
    # VLAN filtering: vlan_filtering, default_pvid, bridge_vlans, port_vlans (vnet_vlans)
    **vlans.BRIDGE_SPEC,
}
# the routes that move with a port's addresses; `bridge -j vlan show`, and whether the
# kernel filters VLANs
FACTS = dict(vnet_ip.ROUTES, **vlans.FACTS)

# field -> `ip link ... type bridge` keyword; timers are centiseconds in iproute2
TIMERS = {"forward_delay": "forward_delay", "hello_time": "hello_time", "max_age": "max_age"}


def _timer(actual_cs, wanted_s):
    """Seconds; a value within the kernel's jiffy rounding of the wanted one reads as it."""
    if wanted_s is not None and abs(actual_cs - wanted_s * 100) <= 1:
        return wanted_s
    return actual_cs / 100


def read(params, facts):
    """The bridge, and what its steps can change on its ports (the rollback target):
    their MTU when `mtu` is declared, their admin state and master (`port_links`)."""
    name = params["name"]
    link = facts.link(name)
    if link is None:
        absent = {"name": name, "state": "absent"}
        if params.get("mtu") is not None:  # so a rollback restores the ports it raised
            absent["ports_mtu"] = _ports_mtu(params.get("ports") or [], facts)
        absent["port_links"] = _port_links(params.get("ports") or [], facts)
        return _with_ip(absent, params, [], facts)
    if facts.kind(name) != "bridge":
        raise host.ModuleError("%s exists but is a %s, not a bridge" % (name, facts.kind(name)))
    info = link["linkinfo"]["info_data"]
    ports = facts.ports_of(name)
    current = {
        "name": name,
        "state": "present",
        "admin_state": "up" if facts.admin_up(name) else "down",
        "mtu": link["mtu"],
        "ports": ports,
        "stp": info.get("stp_state", 0) != 0,
        "priority": info.get("priority"),
    }
    for field in TIMERS:
        current[field] = _timer(info.get(field, 0), params.get(field))
    if params.get("mtu") is not None:
        watched = params["ports"] if params.get("ports") is not None else ports
        current["ports_mtu"] = _ports_mtu(watched, facts)
    current["port_links"] = _port_links(sorted(set(params.get("ports") or []) | set(ports)), facts)
    current.update(vlans.read_bridge(params, facts, name))
    return _with_ip(current, params, ports, facts)


def _with_ip(current, params, ports, facts):
    """`ip`: addresses and routes of the bridge, its ports old and new, and wherever else
    the host holds them (see vnet_ip.state): what steps() can move, seen after a move."""
    current["ip"] = vnet_ip.state(facts, {params["name"], *ports, *(params.get("ports") or [])})
    return current


def _ports_mtu(ports, facts):
    return {p: facts.link(p)["mtu"] for p in ports if facts.link(p) is not None}


def _port_links(ports, facts):
    """Admin state and master of the ports a task adds or releases: steps bring new
    ports up, so a rollback must know which were down."""
    return {
        p: {"up": facts.admin_up(p), "master": facts.link(p).get("master")}
        for p in ports
        if facts.link(p) is not None
    }


def desired(params, current, facts):
    name = params["name"]
    if params["state"] == "absent":
        want = {"name": name, "state": "absent"}
        leaving = current.get("ports", [])
        if _gives_back(current, name, leaving, params, facts):  # undoing a migration
            want["ip"] = vnet_ip.moved(current["ip"], [name], leaving[0])
            del want["ip"][name]
        return want
    facts.net.check_joining(name, "bridge", "port", params.get("ports") or [])
    _check_forward_delay(params)
    if current["state"] == "absent":
        base = {"name": name, "state": "present", "ports": []}
        want = host.merge_desired(base, params)
    else:
        want = host.merge_desired(current, params)
    want.pop("port_links", None)  # recorded for rollbacks; nothing declares it
    want.pop("addresses", None)  # declared addresses are part of `ip`
    joining = [p for p in want["ports"] if p not in current.get("ports", [])]
    want["ip"] = vnet_ip.moved(current["ip"], joining, name, params.get("addresses"))
    leaving = [p for p in current.get("ports", []) if p not in want["ports"]]
    if not want["ports"] and _gives_back(current, name, leaving, params, facts):
        want["ip"] = vnet_ip.moved(want["ip"], [name], leaving[0])
    want["ip"] = vnet_ip.pruned(want["ip"], current["ip"])
    if params.get("mtu") is not None:
        mtu = params["mtu"]
        host.check_mtu_range(name, mtu, facts)
        for port in want["ports"]:
            host.check_mtu_range(port, mtu, facts)
        want["ports_mtu"] = {p: mtu for p in want["ports"]}
    return vlans.desired_bridge(params, want, facts)


def _gives_back(current, name, leaving, params, facts):
    """The bridge's addresses and routes go back to its port, as a port's came to it,
    when that one port leaves it (released, or the bridge deleted), unless they are the
    bridge's own by declaration or the port is a VM's tap."""
    held = current.get("ip", {}).get(name) or {}
    return (len(leaving) == 1 and params.get("addresses") is None
            and facts.kind(leaving[0]) != "tun"
            and bool(held.get("addresses") or held.get("routes")))  # fmt: skip


# forward_delay below 2 s (0 is common on VM bridges) only while STP is off; the other
# ranges, which do not depend on STP, are in ARGUMENT_SPEC
STP_FORWARD_DELAY = (2, 30)


def _check_forward_delay(params):
    low, high = STP_FORWARD_DELAY
    value = params.get("forward_delay")
    if params.get("stp") and value is not None and not low <= value <= high:
        raise host.ModuleError("forward_delay %s is outside %s..%s" % (value, low, high))


def _bridge_options(current, desired):
    """Option groups for `type bridge` (tokens), one command each, in an order the kernel
    accepts. Timers have wider ranges while STP is off: switch STP off before them, on
    after them."""
    timers = []
    for field, keyword in TIMERS.items():
        if field in desired and desired[field] != current.get(field):
            timers += [keyword, round(desired[field] * 100)]
    if desired.get("priority") is not None and desired["priority"] != current.get("priority"):
        timers += ["priority", desired["priority"]]
    if "stp" not in desired or desired["stp"] == current.get("stp"):
        return [timers] if timers else []
    stp = ["stp_state", int(desired["stp"])]
    return [g for g in ([timers, stp] if desired["stp"] else [stp, timers]) if g]


def steps(current, desired, facts):
    name = desired["name"]
    if desired["state"] == "absent":
        out = [host.step("ip", "link", "del", "dev", name)] if current["state"] == "present" else []
        # set only when rolling back a creation: give the ports their MTU and state back
        out += host.mtu_steps(desired.get("ports_mtu", {}), facts)
        out += _port_state_steps(desired.get("port_links", {}), facts)
        return out + _ip_steps(current, desired, facts)
    out = []
    creating = current["state"] == "absent"
    options = _bridge_options({} if creating else current, desired)
    if creating:
        flat = [opt for group in options for opt in group] + vlans.bridge_create_options(desired)
        out.append(host.step("ip", "link", "add", "name", name, "type", "bridge", *flat))
    old_ports = set(current.get("ports", []))
    new_ports = [p for p in desired["ports"] if p not in old_ports]
    stale = sorted(old_ports - set(desired["ports"]))
    out += [host.step("ip", "link", "set", "dev", p, "nomaster") for p in stale]
    mtus = dict(desired.get("ports_mtu", {}))
    if desired.get("mtu") is not None:
        mtus[name] = desired["mtu"]
    out += host.mtu_steps(mtus, facts, planned_ports={name: desired["ports"]})
    links = desired.get("port_links", {})  # a rollback target: ports as they were
    for port in new_ports:
        out.append(host.step("ip", "link", "set", "dev", port, "master", name))
        if port not in links and not facts.admin_up(port):  # a port that is down is no use
            out.append(host.step("ip", "link", "set", "dev", port, "up"))
    out += vlans.bridge_steps(current, desired, new_ports)
    if not creating:
        for group in options:
            out.append(host.step("ip", "link", "set", "dev", name, "type", "bridge", *group))
    if desired.get("admin_state") != current.get("admin_state"):
        out.append(host.step("ip", "link", "set", "dev", name, desired["admin_state"]))
    return out + _port_state_steps(links, facts) + _ip_steps(current, desired, facts)


def _ip_steps(current, desired, facts):
    """Addresses and routes, once the bridge is up with its ports (or, rolling back, is
    gone): see vnet_ip. A bridge being deleted takes its own along."""
    want = dict(desired.get("ip") or {})
    if desired["state"] == "absent":
        want.pop(desired["name"], None)
    return vnet_ip.steps(current.get("ip") or {}, want, facts)


def _port_state_steps(port_links, facts):
    """Ports set up or down again as `port_links` recorded them (rollbacks only)."""
    return [
        host.step("ip", "link", "set", "dev", port, "up" if want["up"] else "down")
        for port, want in sorted(port_links.items())
        if facts.link(port) is not None and want["up"] != facts.admin_up(port)
    ]


def persist(params, desired, facts, units):
    """The bridge as declared, as networkd makes it at boot (see vnet_persist): STP and its
    timers, VLAN filtering, MTU, admin state, addresses and routes (declared, or moved
    from a port); each declared port's master, MTU and VLANs. What the task does not
    declare is left to the kernel's defaults, as when vnetctl makes the bridge."""
    if desired["state"] != "present":
        return
    name = desired["name"]
    pvid = params.get("default_pvid")
    bridge = [("STP", params.get("stp")), ("Priority", params.get("priority")),
              ("VLANFiltering", params.get("vlan_filtering")),
              ("DefaultPVID", "none" if pvid == 0 else pvid)]  # fmt: skip
    bridge += [(NETWORKD_TIMERS[f], bootcfg.seconds(params.get(f))) for f in TIMERS]
    units.netdev(name, "bridge", [("Bridge", bridge)])
    link = [("MTUBytes", params.get("mtu")), ("ActivationPolicy", params["admin_state"])]
    ip = desired.get("ip") or {}
    sections = bootcfg.link_section(link) + bootcfg.ip_sections(ip.get(name) or {})
    if "bridge_vlans" in desired:
        sections += bootcfg.bridge_vlan(desired["bridge_vlans"])
    units.network(name, sections)
    for port in params.get("ports") or []:
        sections = [("Network", [("Bridge", name)])]
        sections += bootcfg.link_section([("MTUBytes", desired.get("ports_mtu", {}).get(port))])
        sections += bootcfg.ip_sections(ip.get(port) or {})
        if port in desired.get("port_vlans", {}):
            sections += bootcfg.bridge_vlan(desired["port_vlans"][port])
        units.network(port, sections, port=name)


NETWORKD_TIMERS = {"forward_delay": "ForwardDelaySec", "hello_time": "HelloTimeSec",
                   "max_age": "MaxAgeSec"}  # fmt: skip
SNAPSHOT_ORDER = 20  # after what makes ports (bonds, VXLAN devices), before plain links


def snapshot(facts):
    """Every Linux bridge as declared parameters that plan nothing on this host. `mtu` is
    declared only where every port has the bridge's MTU (declaring it sets them all)."""
    out = []
    for name, link in sorted(facts.links.items()):
        if facts.kind(name) != "bridge":
            continue
        info = link["linkinfo"]["info_data"]
        ports = facts.ports_of(name)
        params = {"name": name, "ports": ports}
        if all(facts.link(p)["mtu"] == link["mtu"] for p in ports):
            params["mtu"] = link["mtu"]
        params["stp"] = info.get("stp_state", 0) != 0
        for field in TIMERS:
            params[field] = info.get(field, 0) / 100
        params["priority"] = info.get("priority")
        params["admin_state"] = "up" if facts.admin_up(name) else "down"
        params.update(vlans.snapshot_bridge(facts, name, ports))
        out.append(params)
    return out


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
