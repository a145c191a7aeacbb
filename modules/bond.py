#!/usr/bin/python3
# WANT_JSON
"""Linux bond (NIC teaming): mode and its options, members (an exact list), MTU, admin
state.

An existing bond is reconciled in place: members are added and removed without touching
the others (the kernel enslaves only a member that is down: the plan sets it down,
enslaves it and brings it up); miimon, updelay, downdelay, xmit_hash_policy and primary
change while the bond is up. lacp_rate and ad_select need the bond down, and a mode
change needs it down with no members: the plan then sets the bond down, releases every
member, changes the mode, enslaves them again and brings the bond up (the safe-apply
guard sees the bond go down when it carries the management address).

A member joining with addresses gives them to the bond in the same batch, its routes
too (every table, both families: see vnet_ip): the bond gets the address before the
member goes down, so the host is not cut off. A kernel without bonding is refused before
any change.
"""

import copy
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_ip
    from ansible.module_utils import vnet_kernel as kernel
    from ansible.module_utils import vnet_persist as bootcfg
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_ip
    import vnet_kernel as kernel
    import vnet_persist as bootcfg

RESOURCE = "bond"
MODES = ["balance-rr", "active-backup", "balance-xor", "802.3ad", "balance-tlb", "balance-alb"]
ARGUMENT_SPEC = {
    "name": {"type": "ifname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "mode": {"type": "str", "choices": MODES},
    "members": {"type": "list", "elements": "ifname"},
    "miimon": {"type": "int", "range": [0, 2147483647]},  # ms
    "updelay": {"type": "int", "range": [0, 2147483647]},  # ms, a multiple of miimon
    "downdelay": {"type": "int", "range": [0, 2147483647]},
    "lacp_rate": {"type": "str", "choices": ["slow", "fast"]},  # 802.3ad only
    "xmit_hash_policy": {"type": "str", "choices": [
        "layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4", "vlan+srcmac"]},
    "primary": {"type": "ifname"},  # active-backup, balance-tlb, balance-alb
    "ad_select": {"type": "str", "choices": ["stable", "bandwidth", "count"]},
    "mtu": {"type": "int", "range": [68, 65535]},
    "admin_state": {"type": "str", "choices": ["up", "down"], "default": "up"},
}  # fmt: skip
FACTS = dict(vnet_ip.ROUTES, kernel=kernel.SOURCE)
# field -> key in `ip -j -d link` info_data (iproute2 ip/iplink_bond.c bond_print_opt)
INFO_KEYS = {"mode": "mode", "miimon": "miimon", "updelay": "updelay",
             "downdelay": "downdelay", "lacp_rate": "ad_lacp_rate",
             "xmit_hash_policy": "xmit_hash_policy", "primary": "primary",
             "ad_select": "ad_select"}  # fmt: skip
OPTIONS = ["mode", "miimon", "updelay", "downdelay", "xmit_hash_policy", "lacp_rate",
           "ad_select"]  # primary is set once the members are in  # fmt: skip
NEEDS_DOWN = ("mode", "lacp_rate", "ad_select")  # BOND_OPTFLAG_IFDOWN (bond_options.c)
PRIMARY_MODES = ("active-backup", "balance-tlb", "balance-alb")


def read(params, facts):
    """The bond, and what its steps change elsewhere (the rollback target): each member's
    admin state and master (`member_links`), the addresses and routes of the bond and
    of every member, declared or current (a joining member's move to the bond)."""
    name = params["name"]
    link = facts.link(name)
    current = {"name": name, "state": "absent"}
    members = []
    if link is not None:
        if facts.kind(name) != "bond":
            what = facts.kind(name) or "interface of no link kind (a NIC)"
            raise host.ModuleError("%s exists but is a %s, not a bond" % (name, what))
        info = link["linkinfo"].get("info_data") or {}
        members = facts.ports_of(name)
        current.update(state="present", members=members, mtu=link["mtu"],
                       admin_state="up" if facts.admin_up(name) else "down")  # fmt: skip
        current.update({field: info.get(key) for field, key in INFO_KEYS.items()})
    scope = [m for m in sorted(set(params.get("members") or []) | set(members)) if facts.link(m)]
    current["member_links"] = {
        m: {"up": facts.admin_up(m), "master": facts.link(m).get("master")} for m in scope
    }
    devices = scope + ([name] if link is not None else [])
    ip = vnet_ip.state(facts, devices, elsewhere=False)  # global addresses, movable routes
    current["addresses"], current["routes"] = vnet_ip.split(ip)
    return current


def desired(params, current, facts):
    name = params["name"]
    if params["state"] == "absent":
        return {"name": name, "state": "absent"}
    if current["state"] == "absent":
        kernel.require("bonding", facts, "bond %s" % name)
    declared = {k: v for k, v in params.items() if k != "state"}
    base = current if current["state"] == "present" else {
        "name": name, "state": "present", "members": [], "addresses": current["addresses"],
        "routes": current["routes"]}  # fmt: skip
    want = host.merge_desired(copy.deepcopy(base), declared)
    want.pop("member_links", None)  # recorded for rollbacks; nothing declares it
    facts.net.check_joining(name, "bond", "member", want["members"])
    _check_options(want, params)
    if (want.get("mode") or "balance-rr") not in PRIMARY_MODES:
        want["primary"] = None  # the kernel keeps no primary in other modes
    if params.get("mtu") is not None:
        host.check_mtu_range(name, params["mtu"], facts)
    joining = [m for m in want["members"] if m not in current.get("members", [])]
    ip = vnet_ip.moved(vnet_ip.joined(want["addresses"], want["routes"]), joining, name)
    moved = dict(zip(("addresses", "routes"), vnet_ip.split(ip)))  # a joining member's go
    for table, found in moved.items():
        want[table] = {d: v for d, v in found.items() if v or d in current[table]}
    return want


def _check_options(want, params):
    mode = want.get("mode") or "balance-rr"  # the kernel's default
    if params.get("lacp_rate") is not None and mode != "802.3ad":
        raise host.ModuleError("lacp_rate applies to mode 802.3ad only, not %s" % mode)
    if params.get("primary") is not None:
        if mode not in PRIMARY_MODES:
            raise host.ModuleError("primary applies to modes %s only, not %s"
                                   % (", ".join(PRIMARY_MODES), mode))  # fmt: skip
        if params["primary"] not in want["members"]:
            raise host.ModuleError("primary %s is not a member of bond %s"
                                   % (params["primary"], want["name"]))  # fmt: skip
    for field in ("updelay", "downdelay"):
        value, miimon = params.get(field), want.get("miimon") or 0
        if value and (not miimon or value % miimon):
            raise host.ModuleError("%s %d must be a multiple of miimon (%d): the kernel would "
                                   "round it" % (field, value, miimon))  # fmt: skip


def steps(current, desired, facts):
    name = desired["name"]
    links = desired.get("member_links", {})  # a rollback target: members as they were
    if desired["state"] == "absent":
        out = [host.step("ip", "link", "del", "dev", name)] if current["state"] == "present" else []
        ip = _ip_phases(current, desired, facts, gone=name)  # a rollback's: members' own back
        return out + ip["add"] + ip["remove"] + _member_state_steps(links, facts) + ip["route"]
    creating = current["state"] == "absent"
    changed = [f for f in OPTIONS if desired.get(f) is not None and desired[f] != current.get(f)]
    old_members = set(current.get("members", []))
    cycle = not creating and current.get("admin_state") == "up" and any(
        f in NEEDS_DOWN for f in changed)  # fmt: skip
    release_all = "mode" in changed and not creating
    out = []
    if creating:
        out.append(host.step("ip", "link", "add", "name", name, "type", "bond",
                             *_opts(changed, desired)))  # fmt: skip
    elif cycle:
        out.append(host.step("ip", "link", "set", "dev", name, "down"))
    leaving = old_members if release_all else old_members - set(desired["members"])
    out += [host.step("ip", "link", "set", "dev", m, "nomaster") for m in sorted(leaving)]
    if changed and not creating:
        out.append(host.step("ip", "link", "set", "dev", name, "type", "bond",
                             *_opts(changed, desired)))  # fmt: skip
    if desired.get("mtu") is not None and desired["mtu"] != current.get("mtu"):
        out.append(host.step("ip", "link", "set", "dev", name, "mtu", desired["mtu"]))
    taken_down = list(leaving) + [m for m in desired["members"] if m not in old_members]
    ip = _ip_phases(current, desired, facts, dropped=taken_down + ([name] if cycle else []))
    out += ip["add"]
    for member in desired["members"]:
        if member in old_members and member not in leaving:
            continue
        if member not in leaving and facts.admin_up(member):
            out.append(host.step("ip", "link", "set", "dev", member, "down"))
        out.append(host.step("ip", "link", "set", "dev", member, "master", name))
        if links.get(member, {}).get("up", True):
            out.append(host.step("ip", "link", "set", "dev", member, "up"))
    out += ip["remove"]
    if desired.get("primary") and desired["primary"] != current.get("primary"):
        out.append(host.step("ip", "link", "set", "dev", name, "type", "bond", "primary",
                             desired["primary"]))  # fmt: skip
    want_up = desired.get("admin_state") == "up"
    if want_up and (creating or cycle or current.get("admin_state") != "up"):
        out.append(host.step("ip", "link", "set", "dev", name, "up"))
    elif not want_up and current.get("admin_state") == "up" and not cycle:
        out.append(host.step("ip", "link", "set", "dev", name, "down"))
    out += _member_state_steps({m: s for m, s in links.items() if m in leaving}, facts)
    return out + ip["route"]  # last: routes on the bond once it is up with its members


def _opts(fields, desired):
    out = []
    for field in fields:
        out += [field, desired[field]]
    return out


def _ip_phases(current, desired, facts, dropped=(), gone=None):
    """The addresses and routes from `current` to `desired`, in vnet_ip's phases (the one
    migration every module shares); `gone`: a device deleted, its own go with it."""
    want = vnet_ip.joined(desired.get("addresses", {}), desired.get("routes", {}))
    want.pop(gone, None)
    now = vnet_ip.joined(current.get("addresses", {}), current.get("routes", {}))
    return vnet_ip.phases(now, want, facts, dropped)


def _member_state_steps(member_links, facts):
    """Members set up or down again as `member_links` recorded them (a released member
    is down: the kernel closes it)."""
    return [
        host.step("ip", "link", "set", "dev", m, "up" if want["up"] else "down")
        for m, want in sorted(member_links.items())
        if facts.link(m) is not None and want["up"] and want.get("master") is None
    ]


# field -> [Bond] key of a .netdev (systemd.netdev); LACP's only in 802.3ad
NETWORKD_KEYS = {"mode": "Mode", "xmit_hash_policy": "TransmitHashPolicy",
                 "lacp_rate": "LACPTransmitRate", "ad_select": "AdSelect",
                 "miimon": "MIIMonitorSec", "updelay": "UpDelaySec",
                 "downdelay": "DownDelaySec"}  # fmt: skip
MILLISECONDS = ("miimon", "updelay", "downdelay")


def persist(params, desired, facts, units):
    """The bond as declared (options, MTU, admin state), its addresses and routes (moved
    from members); each declared member's Bond= (and PrimarySlave=) in its .network (see
    vnet_persist). What the task does not declare is left to the kernel's defaults."""
    if desired["state"] != "present":
        return
    name, options = desired["name"], []
    for field, key in NETWORKD_KEYS.items():
        value = params.get(field)
        options.append((key, "%dms" % value if field in MILLISECONDS and value is not None
                        else value))  # fmt: skip
    units.netdev(name, "bond", [("Bond", options)])
    state = {"addresses": desired["addresses"].get(name), "routes": desired["routes"].get(name)}
    units.network(name, bootcfg.link_section([("MTUBytes", params.get("mtu")),
                                              ("ActivationPolicy", params["admin_state"])])
                  + bootcfg.ip_sections(state))  # fmt: skip
    for member in params.get("members") or []:
        primary = True if params.get("primary") == member else None
        units.network(member, [("Network", [("Bond", name), ("PrimarySlave", primary)])],
                      port=name)  # fmt: skip


SNAPSHOT_ORDER = 10  # bonds before the bridges and VLANs that use them


def snapshot(facts):
    out = []
    for name, link in sorted(facts.links.items()):
        if facts.kind(name) != "bond":
            continue
        info = link["linkinfo"].get("info_data") or {}
        params = {"name": name, "members": facts.ports_of(name), "mtu": link["mtu"],
                  "admin_state": "up" if facts.admin_up(name) else "down"}  # fmt: skip
        fields = ["mode", "miimon", "updelay", "downdelay", "xmit_hash_policy"]
        fields += ["lacp_rate", "ad_select"] if info.get("mode") == "802.3ad" else []
        fields += ["primary"] if info.get("primary") else []
        params.update({f: info.get(INFO_KEYS[f]) for f in fields})
        out.append(params)
    return out


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
