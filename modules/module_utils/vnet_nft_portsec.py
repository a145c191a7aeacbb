"""Port security on a Linux bridge (port_group): vnetctl's own nftables table, `bridge
vnetctl`, read from `nft -j` and written as nft lines. It holds two of a port group's
settings (vnet_secpolicy): forged transmits (set `guarded`, hook prerouting: what a port
sends) and MAC address changes (set `inbound`, hooks forward and output: what the bridge
and the host send to a port).

MAC changes rejected: unicast frames to the port for any MAC but its guest's (`macs`)
are dropped, whether the bridge forwards or floods them; broadcast and multicast pass. A
guest that changed its MAC receives nothing for the new one. Copies to a promiscuous
port (vnet_nft_taps) do not pass the bridge and are not filtered.

A guarded port's frames must come from its guest's MAC: the Ethernet source, the ARP
sender and the link-layer options of neighbour discovery (RS and NS source, NA target).
With the guest's IPs declared, also its addresses: IPv4 and ARP sender (0.0.0.0 only
for a DHCP request or an ARP probe), IPv6 source, the target of an NA and of a duplicate
address detection NS; `::` only for DAD, MLD reports and router solicitations; link-local
sources and targets: any fe80::/10 (guests choose them: EUI-64, RFC 7217, random),
unless fe80:: addresses are declared, then only those.

VLANs: the kernel takes the outer 802.1Q or 802.1ad tag off a frame before the bridge
sees it, so a frame with one tag is checked exactly as an untagged one (`meta protocol`
is what is inside the tag); a frame with a second tag is dropped, as OVS drops what is
past its vlan-limit. Neighbour discovery behind IPv6 extension headers, and with more
than one option, is dropped.

Rules are written so that `nft list` prints them as they are, and a ruleset saved with
it and loaded again is the same: the protocol is chosen by a `meta protocol` jump, and
the checks of a protocol's chain read raw offsets (@nh, @th), which nft cannot turn into
named fields whose dependency it would re-create as `ether type` (blind to a tagged
frame). So the sets those checks look up are typed by offset (integers); `macs` stays
an Ethernet address set for the Ethernet source, and `lla` holds the same MACs as
integers for the rest. Every rule carries a comment, its name and a hash of its text: a
rule removed, edited or out of date makes the skeleton whole again by rebuilding the
table (elements included) in one nft transaction.

Runs on the managed host: Python 3.9+, standard library only.
"""

import hashlib
import ipaddress

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

TABLE = "vnetctl"
# set -> its nft type; what nft -j says of it
SETS = {
    "guarded": ("type ifname", "ifname"),  # ports whose frames are checked
    "macs": ("type ifname . ether_addr", ["ifname", "ether_addr"]),
    "lla": ("typeof iifname . @nh,64,48", ["ifname", "integer"]),  # the same MACs
    "ipguard": ("type ifname", "ifname"),  # ports whose addresses are declared
    "addr4": ("typeof iifname . @nh,96,32", ["ifname", "integer"]),
    "addr6": ("typeof iifname . @nh,64,128", ["ifname", "integer"]),
    "anyll": ("type ifname", "ifname"),  # guarded by address, any link-local address
    "inbound": ("type ifname", "ifname"),  # ports that get unicast for their MAC only
}
# in the order nft lists them (and their rules, RULES)
CHAINS = {"portsec": "{ type filter hook prerouting priority -200 ; policy accept ; }",
          "guard": "", "guard_arp": "", "guard_ip4": "", "guard_ip6": "", "guard_icmp6": "",
          "guard_nd": "",
          "portsec_fwd": "{ type filter hook forward priority -200 ; policy accept ; }",
          "portsec_out": "{ type filter hook output priority -200 ; policy accept ; }",
          "guard_in": ""}  # fmt: skip
UNSPEC, LINK_LOCAL = "@nh,64,128 0", "@nh,64,10 0x3fa"
# (chain, name, rule): in order, each chain's rules one after the other
RULES = [
    ("portsec", "guarded", "iifname @guarded jump guard"),
    ("guard", "ether-source", "iifname . ether saddr != @macs drop"),
    ("guard", "second-tag", "meta protocol { 8021q, 8021ad } drop"),
    ("guard", "other-ethertype", "iifname @ipguard meta protocol != { arp, ip, ip6 } drop"),
    ("guard", "to-arp", "meta protocol arp jump guard_arp"),
    ("guard", "to-ip4", "meta protocol ip jump guard_ip4"),
    ("guard", "to-ip6", "meta protocol ip6 jump guard_ip6"),
    ("guard_arp", "arp-sender-mac", "iifname . @nh,64,48 != @lla drop"),
    ("guard_arp", "arp-mac-only", "iifname != @ipguard return"),
    ("guard_arp", "arp-sender-ip", "@nh,112,32 != 0 iifname . @nh,112,32 != @addr4 drop"),
    ("guard_ip4", "ip4-mac-only", "iifname != @ipguard return"),
    ("guard_ip4", "dhcp-request", "@nh,96,32 0 @nh,72,8 17 @th,0,32 0x00440043 return"),
    ("guard_ip4", "ip4-source", "iifname . @nh,96,32 != @addr4 drop"),
    ("guard_ip6", "to-icmp6", "meta l4proto ipv6-icmp jump guard_icmp6"),
    ("guard_ip6", "ip6-mac-only", "iifname != @ipguard return"),
    ("guard_ip6", "unspecified-not-icmp6", UNSPEC + " meta l4proto != ipv6-icmp drop"),
    ("guard_ip6", "unspecified-icmp6", UNSPEC + " @th,0,8 != { 131, 132, 133, 135, 143 } drop"),
    ("guard_ip6", "unspecified-ok", UNSPEC + " return"),
    ("guard_ip6", "link-local-source", LINK_LOCAL + " iifname @anyll return"),
    ("guard_ip6", "ip6-source", "iifname . @nh,64,128 != @addr6 drop"),
    ("guard_icmp6", "to-nd", "@th,0,8 { 133, 135, 136 } jump guard_nd"),
    ("guard_nd", "nd-extension-header", "@nh,48,8 != 58 drop"),
    ("guard_nd", "rs-length", "@th,0,8 133 @nh,32,16 != { 8, 16 } drop"),
    ("guard_nd", "rs-option", "@th,0,8 133 @nh,32,16 16 @th,64,16 != 0x0101 drop"),
    ("guard_nd", "rs-source-mac", "@th,0,8 133 @nh,32,16 16 iifname . @th,80,48 != @lla drop"),
    ("guard_nd", "ns-na-length", "@th,0,8 { 135, 136 } @nh,32,16 != { 24, 32 } drop"),
    ("guard_nd", "ns-option", "@th,0,8 135 @nh,64,128 != 0 @nh,32,16 32 @th,192,16 != 0x0101 drop"),
    ("guard_nd", "ns-source-mac",
     "@th,0,8 135 @nh,64,128 != 0 @nh,32,16 32 iifname . @th,208,48 != @lla drop"),
    ("guard_nd", "na-option", "@th,0,8 136 @nh,32,16 32 @th,192,16 != 0x0201 drop"),
    ("guard_nd", "na-target-mac", "@th,0,8 136 @nh,32,16 32 iifname . @th,208,48 != @lla drop"),
    ("guard_nd", "nd-mac-only", "iifname != @ipguard return"),
    ("guard_nd", "rs-any", "@th,0,8 133 return"),
    ("guard_nd", "ns-resolution", "@th,0,8 135 @nh,64,128 != 0 return"),
    ("guard_nd", "target-link-local", "@th,64,10 0x3fa iifname @anyll return"),
    ("guard_nd", "target", "iifname . @th,64,128 != @addr6 drop"),
    ("portsec_fwd", "inbound-forwarded", "oifname @inbound jump guard_in"),
    ("portsec_out", "inbound-local", "oifname @inbound jump guard_in"),
    ("guard_in", "group-destination", "@ll,0,8 & 0x1 == 0x1 return"),
    ("guard_in", "other-destination", "oifname . ether daddr != @macs drop"),
]  # fmt: skip


def comment(chain, name, rule):
    """The rule's comment: its name and a hash of what it is (chain and text)."""
    return "%s.%s" % (name, hashlib.sha1(("%s %s" % (chain, rule)).encode()).hexdigest()[:8])


COMMENTS = {comment(*r): r[1] for r in RULES}
NAMES = [r[1] for r in RULES]


# ---- reading the table ------------------------------------------------------------------


def table(ruleset):
    """vnetctl's table from `nft -j list ruleset bridge`: {"rules": [its rules' names in
    order, "other" for a rule not ours as written; "missing-set:NAME" for a set absent
    or of another type], "elements": {set: [elements as text]}}; None when nft could not
    be run."""
    if ruleset is None:
        return None
    sets, rules = {}, []
    types = {}
    for kind, body in items(ruleset):
        if kind == "set":
            types[body["name"]] = body.get("type")
            sets[body["name"]] = [_element(body["name"], e) for e in body.get("elem", [])]
        elif kind == "rule":
            name = COMMENTS.get(body.get("comment"), "other")
            rules.append(name if _in_chain(name, body.get("chain")) else "other")
    missing = ["missing-set:" + s for s, (_, t) in SETS.items() if types.get(s) != t]
    return {"rules": rules + (missing if rules or sets else []), "elements": sets}


def items(ruleset, table=TABLE):
    """(kind, body) of the objects of `table` in `nft -j` output (sets, chains, rules)."""
    for item in ruleset.get("nftables", []):
        kind, body = next(iter(item.items()))
        if isinstance(body, dict) and body.get("table") == table:
            yield kind, body


def _in_chain(name, chain):
    return any(r[1] == name and r[0] == chain for r in RULES)


def _element(set_name, elem):
    """An element as text ("vnet0", "vnet0 . 52:54:00:aa:00:00"), whatever the set's type
    (integers from the sets typed by offset, text from those typed by name)."""
    if isinstance(elem, dict) and "elem" in elem:
        elem = elem["elem"].get("val", elem["elem"])
    parts = elem["concat"] if isinstance(elem, dict) and "concat" in elem else [elem]
    if len(parts) == 2 and set_name in ("lla", "addr4", "addr6"):
        parts = [parts[0], _from_int(set_name, parts[1])]
    return " . ".join(str(p) for p in parts)


def _from_int(set_name, value):
    """An integer element (nft -j: a number, or "0x..." past 64 bits) as text; the sets
    of an older table, typed by name, hold text already."""
    if isinstance(value, str) and value.startswith("0x"):
        value = int(value, 16)
    if not isinstance(value, int):
        return value
    if set_name == "lla":
        return ":".join("%02x" % b for b in value.to_bytes(6, "big"))
    return str(ipaddress.ip_address(value) if set_name == "addr4" else
               ipaddress.IPv6Address(value))  # fmt: skip


def whole(rules):
    """Whether a table's "rules" (see table()) is the skeleton, as written."""
    return rules == NAMES


def guard_of(elements, port):
    """A port's guard as the table has it: {"macs", "lla", "ips", "any_link_local",
    "inbound"}, None for what it is not guarded by (False: no inbound filter)."""

    def of(set_name):
        return sorted(e.split(" . ", 1)[1] for e in elements.get(set_name, [])
                      if e.split(" . ", 1)[0] == port)  # fmt: skip

    guarded = port in elements.get("guarded", [])
    by_ip = port in elements.get("ipguard", [])
    inbound = port in elements.get("inbound", [])
    return {"macs": of("macs") if guarded or inbound else None,
            "lla": of("lla") if guarded else None,
            "ips": sorted(of("addr4") + of("addr6"), key=_ip_key) if by_ip else None,
            "any_link_local": (port in elements.get("anyll", [])) if by_ip else None,
            "inbound": inbound}  # fmt: skip


def _ip_key(text):
    ip = ipaddress.ip_address(text)
    return (ip.version, ip)


def guard(mac, ips, forged=True, inbound=True):
    """The guard a port gets: `forged` (forged transmits rejected) checks what it sends
    against its guest's MAC and IPs (None: MAC only), `inbound` (MAC changes rejected)
    what it receives against the MAC."""
    if not forged and not inbound:
        return UNGUARDED
    ips = None if ips is None or not forged else sorted(
        {str(ipaddress.ip_address(i)) for i in ips}, key=_ip_key)  # fmt: skip
    return {"macs": [mac], "lla": [mac] if forged else None, "ips": ips,
            "any_link_local": None if ips is None else not any(
                ipaddress.ip_address(i).is_link_local for i in ips if ":" in i),
            "inbound": inbound}  # fmt: skip


UNGUARDED = {"macs": None, "lla": None, "ips": None, "any_link_local": None, "inbound": False}


# ---- writing it -------------------------------------------------------------------------


def elements(port, state):
    """{(set, element text)} a port's guard puts in the table."""
    out = set()
    if state.get("macs") is not None:
        out |= {("macs", "%s . %s" % (port, m)) for m in state["macs"]}
    if state.get("lla") is not None:
        out.add(("guarded", port))
        out |= {("lla", "%s . %s" % (port, m)) for m in state["lla"]}
    if state.get("inbound"):
        out.add(("inbound", port))
    if state.get("ips") is not None:
        out.add(("ipguard", port))
        out |= {("addr6" if ":" in a else "addr4", "%s . %s" % (port, a)) for a in state["ips"]}
    if state.get("any_link_local"):
        out.add(("anyll", port))
    return out


def _nft_value(set_name, text):
    """An element as nft reads it: integers for the sets typed by offset."""
    if " . " not in text:
        return text
    port, value = text.split(" . ", 1)
    if set_name == "lla":
        value = "0x" + value.replace(":", "")
    elif set_name in ("addr4", "addr6"):
        value = "%#x" % int(ipaddress.ip_address(value))
    return "%s . %s" % (port, value)


def element_steps(verb, items):
    """Each element's values one word each for the line writer (a value holding a blank
    is refused there, never split into words of its own), joined by nft's `.`."""
    out = []
    for set_name, text in sorted(items):
        words = []
        for value in _nft_value(set_name, text).split(" . "):
            words += [".", value] if words else [value]
        out.append(vnet_core.step("nft", verb, "element", "bridge", TABLE, set_name, "{",
                                  *words, "}"))  # fmt: skip
    return out


def rebuild_steps(all_elements):
    """The whole table again, in one transaction: the skeleton and `all_elements`."""
    out = [_nft("add", "table", "bridge", TABLE), _nft("delete", "table", "bridge", TABLE),
           _nft("add", "table", "bridge", TABLE)]  # fmt: skip
    out += [_nft("add", "set", "bridge", TABLE, s, "{", t, ";", "}") for s, (t, _) in SETS.items()]
    out += [_nft("add", "chain", "bridge", TABLE, c, spec) for c, spec in CHAINS.items()]
    out += [_nft("add", "rule", "bridge", TABLE, c, r, "comment", comment(c, n, r))
            for c, n, r in RULES]  # fmt: skip
    return out + element_steps("add", all_elements)


def drop_steps():
    """No table at all, as before the first port group (a rollback to that state)."""
    return [_nft("add", "table", "bridge", TABLE), _nft("delete", "table", "bridge", TABLE)]


def _nft(*words):
    """A line of this module's own constants (sets, chains, rules: no value from a
    playbook), split into words."""
    return vnet_core.step("nft", *" ".join(w for w in words if w).split(" "))
