#!/usr/bin/python3
# WANT_JSON
"""A port group on a Linux bridge: a named policy its VM ports get (by name or shell
pattern, `vnet*`): an access VLAN and tagged VLANs, port security, isolation and ARP/ND
suppression. Ports that appear later get it on the next run; declared ports that do not
exist yet (their guest is off) are left for then.

Port security uses nftables' bridge family, in one table vnetctl owns (`bridge vnetctl`;
no other table is read for changes or touched): frames entering the bridge from a
guarded port must come from its MAC (Ethernet and ARP sender), and, when the port's IPs
are declared, from those IPs (IPv4, ARP, IPv6; DHCP's 0.0.0.0 and IPv6 link-local and
unspecified sources pass). A port's MAC is its guest's, declared in `guests`, else the
port device's own. The table's skeleton (sets, chain, rules) is repaired in one nft
transaction when a rule is missing; a guarded port is an element of its sets, added and
removed one by one. Elements of interfaces that no longer exist are removed.

`isolated` ports do not forward to one another (only to non-isolated ports);
`neigh_suppress` answers ARP/ND from the bridge's neighbour entries. `state: absent`
removes the group's port security and clears its flags; VLANs stay as they are.
"""

import fnmatch
import ipaddress
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_vlans as vlans
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_vlans as vlans

RESOURCE = "port_group"
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
TABLE = "vnetctl"
FACTS = dict(vlans.FACTS, nft_bridge=host.command(["nft", "-j", "list", "ruleset", "bridge"],
                                                  optional=True))  # fmt: skip
SETS = {"guarded": "ifname", "macs": "ifname . ether_addr", "ipguard": "ifname",
        "addr4": "ifname . ipv4_addr", "addr6": "ifname . ipv6_addr"}  # fmt: skip
# rule name -> (its text, the sets it reads and the fields it matches: how nft -j shows it)
RULES = {
    "mac": ("iifname @guarded iifname . ether saddr != @macs drop",
            {"@guarded", "@macs", "ether saddr"}),
    "arp-mac": ("iifname @guarded iifname . arp saddr ether != @macs drop",
                {"@guarded", "@macs", "arp saddr ether"}),
    "ip4": ("iifname @ipguard ip saddr != 0.0.0.0 iifname . ip saddr != @addr4 drop",
            {"@ipguard", "@addr4", "ip saddr"}),
    "arp-ip4": ("iifname @ipguard arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @addr4 drop",
                {"@ipguard", "@addr4", "arp saddr ip"}),
    "ip6": ("iifname @ipguard ip6 saddr != fe80::/10 ip6 saddr != :: iifname . ip6 saddr "
            "!= @addr6 drop", {"@ipguard", "@addr6", "ip6 saddr"}),
}  # fmt: skip
CHAIN = "portsec { type filter hook prerouting priority -200 ; policy accept ; }"
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
            state.update(_guard_of(table, port))
        current["ports"][port] = state
    if table is not None:
        stale = [
            "%s:%s" % (name, " . ".join(e if isinstance(e, tuple) else (e,)))
            for name, elements in sorted(table["sets"].items()) for e in elements
            if facts.link(e[0] if isinstance(e, tuple) else e) is None
        ]  # fmt: skip
        current["nft"] = {"rules": table["rules"], "stale": stale}
    return current


def _vlans_declared(params):
    return params.get("vlan") is not None or params.get("tagged") is not None


def _members(params, facts):
    """The bridge's ports that the group's names or patterns, or its guests, select."""
    patterns = list(params.get("ports") or []) + [g["port"] for g in params.get("guests") or []]
    return [p for p in facts.ports_of(params["bridge"])
            if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]  # fmt: skip


def _table(facts):
    """vnetctl's table as {"rules": [names], "sets": {set: [elements]}, "interfaces"}; None
    when nft cannot be run (not installed, or no nf_tables)."""
    ruleset = facts.get("nft_bridge")
    if ruleset is None:
        return None
    sets, rules = {}, []
    for item in ruleset.get("nftables", []):
        kind, body = next(iter(item.items()))
        if not isinstance(body, dict) or body.get("table") != TABLE:
            continue
        if kind == "set":
            sets[body["name"]] = [_element(e) for e in body.get("elem", [])]
        elif kind == "rule" and body.get("chain") == "portsec":
            rules.append(_rule_name(body.get("expr", [])))
    return {"rules": sorted(rules), "sets": sets}


def _element(elem):
    if isinstance(elem, dict) and "concat" in elem:
        return tuple(elem["concat"])
    return elem["elem"]["val"] if isinstance(elem, dict) and "elem" in elem else elem


def _rule_name(expr):
    """The name of a rule of ours (RULES) from its nft -j expression, or "other"."""
    seen, drop = set(), any("drop" in e for e in expr)

    def walk(node):
        if isinstance(node, dict):
            if "payload" in node:
                seen.add("%(protocol)s %(field)s" % node["payload"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and node.startswith("@"):
            seen.add(node)

    walk(expr)
    seen.discard("ether type")  # a protocol dependency some nft versions spell out
    return next((n for n, (_, sig) in RULES.items() if drop and seen == sig), "other")


def _guard_of(table, port):
    """The port's MACs and IPs in the table (None: not guarded)."""
    sets = table["sets"]
    macs = sorted(m for p, m in sets.get("macs", []) if p == port)
    ips = sorted(a for s in ("addr4", "addr6") for p, a in sets.get(s, []) if p == port)
    return {"macs": macs if port in sets.get("guarded", []) else None,
            "ips": ips if port in sets.get("ipguard", []) else None}  # fmt: skip


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
        rules = sorted(RULES) if params["port_security"] else current["nft"]["rules"]
        want["nft"] = {"rules": rules, "stale": []}
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
                       {"macs": None, "ips": None})  # fmt: skip
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
    return {"macs": [mac.lower()], "ips": sorted(ips) if ips is not None else None}


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
    out = []
    if sorted(current["nft"]["rules"]) != sorted(desired["nft"]["rules"]):
        out += [_nft("add", "table", "bridge", TABLE)]
        out += [_nft("add", "set", "bridge", TABLE, n, "{", "type", *_words(t), ";", "}")
                for n, t in SETS.items()]  # fmt: skip
        out += [_nft("add", "chain", "bridge", TABLE, *_words(CHAIN)),
                _nft("flush", "chain", "bridge", TABLE, "portsec")]  # fmt: skip
        out += [_nft("add", "rule", "bridge", TABLE, "portsec", *_words(RULES[r][0]))
                for r in RULES if r in desired["nft"]["rules"]]  # fmt: skip
    adds, dels = [], []
    for port in sorted(set(current["ports"]) | set(desired["ports"])):
        old = _elements(port, current["ports"].get(port, {}))
        new = _elements(port, desired["ports"].get(port, {}))
        adds += sorted(new - old)
        dels += sorted(old - new)
    for stale in current["nft"]["stale"]:  # of interfaces gone: "set:elem . elem"
        name, _, element = stale.partition(":")
        dels.append((name, tuple(element.split(" . "))))
    out += [_nft("add", "element", "bridge", TABLE, s, "{", *_concat(e), "}") for s, e in adds]
    return out + [_nft("delete", "element", "bridge", TABLE, s, "{", *_concat(e), "}")
                  for s, e in dels]  # fmt: skip


def _elements(port, state):
    out = set()
    if state.get("macs") is not None:
        out |= {("guarded", (port,))} | {("macs", (port, m)) for m in state["macs"]}
    if state.get("ips") is not None:
        out.add(("ipguard", (port,)))
        out |= {("addr6" if ":" in a else "addr4", (port, a)) for a in state["ips"]}
    return out


def _nft(*tokens):
    """One `nft -f` line: each token one word (a value holding a blank is refused by the
    line writer, never split into words of its own)."""
    return host.step("nft", *tokens)


def _words(text):
    """This module's own nft syntax (SETS, CHAIN, RULES) as words: only constants."""
    return text.split(" ")


def _concat(element):
    """A set element's values joined by nft's concatenation, each value one word."""
    out = []
    for value in element:
        out += [".", value] if out else [value]
    return out


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
    whole = table is not None and table["rules"] == sorted(RULES)
    groups = {}
    for bridge in sorted(n for n in facts.links if facts.kind(n) == "bridge"):
        for port in facts.ports_of(bridge):
            data = facts.link(port)["linkinfo"].get("info_slave_data") or {}
            guard = _guard_of(table, port) if whole else {"macs": None, "ips": None}
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
