#!/usr/bin/python3
# WANT_JSON
"""A port group on a Linux bridge: a named policy its VM ports get (by name or shell
pattern, `vnet*`): an access VLAN and tagged VLANs, port security, isolation and ARP/ND
suppression. Ports that appear later get it on the next run; declared ports that do not
exist yet (their guest is off) are left for then.

Port security uses nftables' bridge family, in one table vnetctl owns (`bridge vnetctl`;
no other table is read for changes or touched; what is checked: vnet_nft_portsec):
frames entering the bridge from a guarded port must come from its MAC (Ethernet source,
ARP sender, neighbour discovery's link-layer options), and, when the port's IPs are
declared, from those IPs (IPv4, ARP, IPv6, NA and DAD targets), untagged or in one VLAN
tag; a second tag is dropped. A port's MAC is its guest's, declared in `guests`, else
the port device's own. The rules name the port, so a port made again under its name is
guarded from its first frame. The table (sets, chains, rules) is rebuilt whole, with
every guarded port's elements, in one nft transaction when a rule is missing, changed
or of an earlier vnetctl; a guarded port is an element of its sets, added and removed
one by one. Elements of interfaces that no longer exist are removed.

`isolated` ports do not forward to one another (only to non-isolated ports);
`neigh_suppress` answers ARP/ND from the bridge's neighbour entries. `state: absent`
removes the group's port security and clears its flags; VLANs stay as they are.
"""

import fnmatch
import ipaddress
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_nft_portsec as nftsec
    from ansible.module_utils import vnet_vlans as vlans
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_nft_portsec as nftsec
    import vnet_vlans as vlans

RESOURCE = "port_group"
NOT_PERSISTED = (  # no boot configuration: why
    "it applies to VM ports, which libvirt makes as each guest starts: the next run applies it"
)
GUEST = {"port": {"type": "ifname", "required": True}, "mac": {"type": "str"},
         "ips": {"type": "list", "elements": "str"}}  # fmt: skip
ARGUMENT_SPEC = {
    "name": {"type": "objname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "bridge": {"type": "ifname", "required": True},
    "ports": {"type": "list", "elements": "str"},  # names or patterns: vnet*, tap[0-9]
    "vlan": {"type": "int", "range": [1, 4094]},  # access VLAN: PVID, untagged
    "tagged": vlans.VLAN_SET,  # and these, tagged
    "port_security": {"type": "bool"},
    "guests": {"type": "list", "elements": "dict", "options": GUEST},
    "isolated": {"type": "bool"},
    "neigh_suppress": {"type": "bool"},
}
FACTS = dict(vlans.FACTS, nft_bridge=host.command(["nft", "-j", "list", "ruleset", "bridge"],
                                                  optional=True))  # fmt: skip
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
FLAGS = ("isolated", "neigh_suppress")


def _effective(params):
    """`state: absent` clears what a group sets: flags off, no port security."""
    if params["state"] == "present":
        return params
    return dict(params, isolated=False, neigh_suppress=False, port_security=False)


def read(params, facts):
    params = _effective(params)
    bridge, name = params["bridge"], params["name"]
    if facts.link(bridge) is None or facts.kind(bridge) != "bridge":
        msg = "port group %s: bridge %s does not exist on this host" % (name, bridge)
        raise host.ModuleError(msg)
    members = _members(params, facts)
    current = {"name": name, "bridge": bridge, "members": members, "ports": {}}
    table = _table(facts) if params.get("port_security") is not None else None
    memberships = vlans.memberships(facts) if _vlans_declared(params) else {}
    for port in members:
        data = facts.link(port)["linkinfo"].get("info_slave_data") or {}
        state = {flag: bool(data.get(flag)) for flag in FLAGS if params.get(flag) is not None}
        if _vlans_declared(params):
            state["vlans"] = memberships.get(port, vlans.membership())
        if table is not None:
            state.update(nftsec.guard_of(table["elements"], port))
        current["ports"][port] = state
    if table is not None:
        ports = {e.split(" . ")[0] for items in table["elements"].values() for e in items}
        stale = sorted("%s:%s" % (s, e) for s, items in table["elements"].items() for e in items
                       if facts.link(e.split(" . ")[0]) is None)  # fmt: skip
        # the other guarded ports' guards: a rebuilt table keeps them (their MACs in
        # `lla` too, which a table of an earlier vnetctl lacks)
        others = {p: nftsec.guard_of(table["elements"], p) for p in sorted(ports)
                  if p not in members and facts.link(p) is not None}  # fmt: skip
        others = {p: dict(g, lla=g["macs"]) for p, g in others.items()}
        current["nft"] = {"rules": table["rules"], "stale": stale, "others": others}
    return current


def _vlans_declared(params):
    return params.get("vlan") is not None or params.get("tagged") is not None


def _members(params, facts):
    """The bridge's ports that the group's names or patterns, or its guests, select."""
    patterns = list(params.get("ports") or []) + [g["port"] for g in params.get("guests") or []]
    return [p for p in facts.ports_of(params["bridge"])
            if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]  # fmt: skip


def _table(facts):
    """vnetctl's table (vnet_nft_portsec.table()); None when nft cannot be run (not
    installed, or no nf_tables)."""
    return nftsec.table(facts.get("nft_bridge"))


def desired(params, current, facts):
    params = _effective(params)
    want = {k: v for k, v in current.items() if k != "ports"}
    present = params["state"] == "present"
    guests = {g["port"]: g for g in params.get("guests") or []}
    if _vlans_declared(params) and present:
        vlans.require(facts, "port group %s" % params["name"])
    if params.get("port_security") and "nft" not in current:
        raise host.ModuleError("port group %s: port security needs nftables (`nft`, with "
                               "the kernel's nf_tables)" % params["name"])  # fmt: skip
    if "nft" in current:  # whole when security is on; stale elements go either way
        rules = nftsec.NAMES if params["port_security"] else current["nft"]["rules"]
        want["nft"] = dict(current["nft"], rules=rules, stale=[])
    for pattern in params.get("ports") or []:
        if not re.match(r"[A-Za-z0-9_.*?\[\]-]+\Z", pattern):
            raise host.ModuleError("ports: %r is not an interface name or pattern" % pattern)
    want["ports"] = {}
    for port, state in current["ports"].items():
        new = dict(state)
        for flag in FLAGS:
            if params.get(flag) is not None:
                new[flag] = params[flag] and present
        if _vlans_declared(params) and present:
            new["vlans"] = _membership(params)
        if params.get("port_security") is not None:
            guarded = params["port_security"] and present
            new.update(_guard(port, guests.get(port), facts) if guarded else
                       nftsec.UNGUARDED)  # fmt: skip
        want["ports"][port] = new
    return want


def _membership(params):
    vid = params.get("vlan")
    tagged = vlans.vids(params.get("tagged"), "tagged")
    return vlans.membership(tagged | ({vid} if vid else set()), vid, {vid} if vid else set())


def _guard(port, guest, facts):
    mac = (guest or {}).get("mac") or facts.link(port).get("address", "")
    if not MAC.match(mac.lower()):
        raise host.ModuleError("guests: %r of port %s is not a MAC address" % (mac, port))
    if port[0].isdigit():
        raise host.ModuleError("port security: nft cannot name port %s (it starts with a digit)"
                               % port)  # fmt: skip
    ips = (guest or {}).get("ips")
    for ip in ips or []:
        try:
            host.ip_value(ipaddress.ip_address, ip)
        except ValueError:
            msg = "guests: %r of port %s is not an IP address" % (ip, port)
            raise host.ModuleError(msg) from None
    return nftsec.guard(mac.lower(), ips)


def steps(current, desired, facts):
    out = []
    for port, want in sorted(desired["ports"].items()):
        have = current["ports"].get(port, {})
        if "vlans" in want and want["vlans"] != have.get("vlans"):
            out += vlans.steps(port, have.get("vlans") or vlans.membership(), want["vlans"])
        flags = []
        for flag in FLAGS:
            if flag in want and want[flag] != have.get(flag):
                flags += [flag, "on" if want[flag] else "off"]
        if flags:
            out.append(host.step("bridge", "link", "set", "dev", port, *flags))
    return out + _nft_steps(current, desired)


def _nft_steps(current, desired):
    if "nft" not in desired:
        return []
    have, want = set(), set()
    for port in sorted(set(current["ports"]) | set(desired["ports"])):
        have |= nftsec.elements(port, current["ports"].get(port, {}))
        want |= nftsec.elements(port, desired["ports"].get(port, {}))
    if current["nft"]["rules"] != desired["nft"]["rules"]:  # the table again, whole
        for port, guard in desired["nft"]["others"].items():
            want |= nftsec.elements(port, guard)
        if not desired["nft"]["rules"] and not want:  # no table was there (a rollback)
            return nftsec.drop_steps()
        return nftsec.rebuild_steps(want)
    dels = sorted(have - want) + [tuple(s.split(":", 1)) for s in current["nft"]["stale"]]
    return nftsec.element_steps("add", want - have) + nftsec.element_steps("delete", dels)


def _guest(port, guard):
    guest = {"port": port, "mac": guard["macs"][0]}
    if guard["ips"] is not None:
        guest["ips"] = guard["ips"]
    return guest


SNAPSHOT_ORDER = 25  # after the bridges whose ports they are


def snapshot(facts):
    """One group per bridge and policy (isolated, neigh_suppress, guarded, IPs guarded),
    its ports by name, guarded ports' guests as the table has them. Port security is
    declared only where vnetctl's table is whole (a broken one is drift, not a policy);
    VLANs are the bridge's `port_vlans`."""
    try:
        table = _table(facts)
    except host.ModuleError:  # facts recorded before port groups existed: no table
        table = None
    whole = table is not None and nftsec.whole(table["rules"])
    groups = {}
    for bridge in sorted(n for n in facts.links if facts.kind(n) == "bridge"):
        for port in facts.ports_of(bridge):
            data = facts.link(port)["linkinfo"].get("info_slave_data") or {}
            guard = nftsec.guard_of(table["elements"], port) if whole else nftsec.UNGUARDED
            key = (bridge, bool(data.get("isolated")), bool(data.get("neigh_suppress")),
                   guard["macs"] is not None, guard["ips"] is not None)  # fmt: skip
            if any(key[1:]):
                groups.setdefault(key, []).append((port, guard))
    out = []
    for n, (key, members) in enumerate(sorted(groups.items()), start=1):
        bridge, isolated, suppress, guarded, _ = key
        params = {"name": "%s-%d" % (bridge, n), "bridge": bridge,
                  "ports": [p for p, _ in members], "isolated": isolated,
                  "neigh_suppress": suppress}  # fmt: skip
        if whole:
            params["port_security"] = guarded
        if guarded:
            params["guests"] = [_guest(p, g) for p, g in members if g["macs"]]
        out.append(params)
    return out


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
