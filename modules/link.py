#!/usr/bin/python3
# WANT_JSON
"""MTU and admin state of any interface.

It refuses to leave a bridge above one of its ports: raise the ports before the bridge,
lower the bridge before its ports (linux_bridge's `mtu` does both in the right order).
"""

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_persist as bootcfg
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_persist as bootcfg

RESOURCE = "link"
ARGUMENT_SPEC = {
    "name": {"type": "ifname", "required": True},
    "mtu": {"type": "int", "range": [68, 65535]},
    "admin_state": {"type": "str", "choices": ["up", "down"]},
}


def read(params, facts):
    name = params["name"]
    link = facts.link(name)
    if link is None:
        raise host.ModuleError("interface %s does not exist on this host" % name)
    return {
        "name": name,
        "mtu": link["mtu"],
        "admin_state": "up" if facts.admin_up(name) else "down",
    }


def desired(params, current, facts):
    want = host.merge_desired(current, params)
    name, mtu = want["name"], want["mtu"]
    if mtu != current["mtu"]:
        host.check_mtu_range(name, mtu, facts)
        _check_bridge_consistency(name, mtu, facts)
    return want


def _check_bridge_consistency(name, mtu, facts):
    master = (facts.link(name) or {}).get("master")
    if master and facts.kind(master) == "bridge" and mtu < facts.link(master)["mtu"]:
        upper_mtu = facts.link(master)["mtu"]
        raise host.ModuleError(
            "%s is a port of bridge %s (mtu %d): lowering it to %d would leave the bridge "
            "above its port; lower %s first" % (name, master, upper_mtu, mtu, master)
        )
    for port in facts.ports_of(name):
        if facts.link(port)["mtu"] < mtu:
            raise host.ModuleError(
                "bridge %s cannot carry mtu %d: its port %s has mtu %d; raise the ports first"
                % (name, mtu, port, facts.link(port)["mtu"])
            )


def steps(current, desired, facts):
    name = desired["name"]
    out = host.mtu_steps({name: desired["mtu"]}, facts) if desired["mtu"] != current["mtu"] else []
    if desired["admin_state"] != current["admin_state"]:
        out.append(host.step("ip", "link", "set", "dev", name, desired["admin_state"]))
    return out


def persist(params, desired, facts, units):
    """What the task declares of the device (see vnet_persist): its MTU, and whether
    networkd brings it up."""
    pairs = [("MTUBytes", params.get("mtu")), ("ActivationPolicy", params.get("admin_state"))]
    if any(value is not None for _, value in pairs):
        units.network(desired["name"], bootcfg.link_section(pairs))


SNAPSHOT_ORDER = 90
# interfaces a snapshot declares: NICs (no link kind) and veths; VM taps come and go with
# their guests, and virtual devices belong to the modules that make them
SNAPSHOT_KINDS = (None, "veth")


def snapshot(facts):
    return [
        {"name": name, "mtu": link["mtu"], "admin_state": "up" if facts.admin_up(name) else "down"}
        for name, link in sorted(facts.links.items())
        if name != "lo" and facts.kind(name) in SNAPSHOT_KINDS
    ]


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
