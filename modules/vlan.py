#!/usr/bin/python3
# WANT_JSON
"""802.1Q VLAN sub-interfaces: `eth1.100` (parent and id read from the name when not
declared) or a named device on a parent, with an MTU no larger than the parent's.

The kernel cannot change a VLAN device's parent, id or protocol: such a change deletes
the device and makes it again (its addresses go with it; the safe-apply guard sees
the delete when it carries the management address). A kernel without 802.1Q is
refused before any change.
"""

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_kernel as kernel
    from ansible.module_utils import vnet_persist as bootcfg
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_kernel as kernel
    import vnet_persist as bootcfg

RESOURCE = "vlan"
ARGUMENT_SPEC = {
    "name": {"type": "ifname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "parent": {"type": "ifname"},  # default: the part of the name before the last "."
    "id": {"type": "int", "range": [1, 4094]},  # default: the part after it
    "protocol": {"type": "str", "choices": ["802.1Q", "802.1ad"]},
    "mtu": {"type": "int", "range": [68, 65535]},
    "admin_state": {"type": "str", "choices": ["up", "down"], "default": "up"},
}
FACTS = {"kernel": kernel.SOURCE}
IMMUTABLE = ("parent", "id", "protocol")


def read(params, facts):
    name = params["name"]
    link = facts.link(name)
    if link is None:
        return {"name": name, "state": "absent"}
    if facts.kind(name) != "vlan":
        what = facts.kind(name) or "interface of no link kind (a NIC)"
        raise host.ModuleError("%s exists but is a %s, not a VLAN device" % (name, what))
    info = link["linkinfo"].get("info_data") or {}
    return {"name": name, "state": "present", "parent": link.get("link"), "id": info.get("id"),
            "protocol": info.get("protocol", "802.1Q"), "mtu": link["mtu"],
            "admin_state": "up" if facts.admin_up(name) else "down"}  # fmt: skip


def _from_name(name):
    """("eth1", 100) for "eth1.100", else (None, None)."""
    parent, _, vid = name.rpartition(".")
    if parent and vid.isdigit() and 1 <= int(vid) <= 4094:
        return parent, int(vid)
    return None, None


def desired(params, current, facts):
    name = params["name"]
    if params["state"] == "absent":
        return {"name": name, "state": "absent"}
    parent, vid = _from_name(name)
    given = dict(params, parent=params.get("parent") or parent, id=params.get("id") or vid)
    if current["state"] == "absent":
        if given["parent"] is None or given["id"] is None:
            raise host.ModuleError("vlan %s: declare parent and id (or name it PARENT.ID)" % name)
        given.setdefault("protocol", None)
        given["protocol"] = given["protocol"] or "802.1Q"
        kernel.require("8021q", facts, "vlan %s" % name)
    want = host.merge_desired(current, given)
    want["state"] = "present"
    parent_link = facts.link(want["parent"])
    if parent_link is None:
        msg = "parent %s of vlan %s does not exist on this host" % (want["parent"], name)
        raise host.ModuleError(msg)
    if params.get("mtu") is not None:
        host.check_mtu_range(name, params["mtu"], facts)
        if params["mtu"] > parent_link["mtu"]:
            raise host.ModuleError(
                "vlan %s cannot have mtu %d: its parent %s has mtu %d; raise the parent first"
                % (name, params["mtu"], want["parent"], parent_link["mtu"])
            )
    return want


def steps(current, desired, facts):
    name = desired["name"]
    out = []
    if current["state"] == "present" and (desired["state"] == "absent" or any(
            desired.get(f) != current.get(f) for f in IMMUTABLE)):  # fmt: skip
        out.append(host.step("ip", "link", "del", "dev", name))
        current = {"state": "absent"}
    if desired["state"] == "absent":
        return out
    if current["state"] == "absent":
        out.append(
            host.step(
                "ip",
                "link",
                "add",
                "link",
                desired["parent"],
                "name",
                name,
                "type",
                "vlan",
                "protocol",
                desired["protocol"],
                "id",
                desired["id"],
            )
        )
    if desired.get("mtu") is not None and desired["mtu"] != current.get("mtu"):
        out.append(host.step("ip", "link", "set", "dev", name, "mtu", desired["mtu"]))
    if desired["admin_state"] != current.get("admin_state"):
        out.append(host.step("ip", "link", "set", "dev", name, desired["admin_state"]))
    return out


def persist(params, desired, facts, units):
    """The VLAN device (networkd makes it from its parent's VLAN=), its MTU and admin
    state (see vnet_persist)."""
    if desired["state"] != "present":
        return
    name = desired["name"]
    units.netdev(name, "vlan", [("VLAN", [("Id", desired["id"]),
                                          ("Protocol", desired["protocol"].lower())])])  # fmt: skip
    units.network(desired["parent"], [("Network", [("VLAN", name)])])
    mtu = params.get("mtu")
    units.network(
        name,
        bootcfg.link_section([("MTUBytes", mtu), ("ActivationPolicy", desired["admin_state"])]),
    )


SNAPSHOT_ORDER = 15  # after bonds (their parents), before the bridges that use them


def snapshot(facts):
    return [
        {k: v for k, v in read({"name": name}, facts).items() if k != "state"}
        for name in sorted(facts.links)
        if facts.kind(name) == "vlan"
    ]


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
