"""The per-host form of a micro-segmentation policy (security_groups): what the
controller sends a host once it has resolved every group's members from the fleet. Both
dataplanes compile it (vnet_nft_microseg: a Linux bridge; vnet_ovs_microseg: Open
vSwitch); this file is the one place it is checked.

    {"bridge": "br-vm",
     "ports": [{"port": "vnet3",          # ifname; absent until the VM starts
                "mac": "52:54:00:12:34:56",
                "groups": ["web"],
                "ingress": [RULE, ...],    # traffic to the VM
                "egress": [RULE, ...],     # traffic from the VM
                "default_ingress": "drop|reject|allow",
                "default_egress": "drop|reject|allow"}]}

    RULE = {"id": "web/2",                 # group/index: comments, cookies
            "action": "allow|deny|reject",
            "family": "ipv4|ipv6|any",
            "proto": "tcp|udp|icmp|icmpv6|any",
            "ports": [443, "8000-8080"],    # tcp/udp only
            "icmp_types": ["echo-request"], # icmp/icmpv6 only
            "peers": ["10.0.0.5/32", "fd00::/64"] or ["any"],
            "log": false}

Allowed traffic is stateful: established and related return traffic passes. Rules are
tried in list order, the first that matches decides; then the default. A rule whose
peers are all of another family than its own matches nothing (a group with no member
yet: `peers: []`).

Runs on the managed host: Python 3.9+, standard library only.
"""

import ipaddress
import re

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

ACTIONS = ("allow", "deny", "reject")
DEFAULTS = ("drop", "reject", "allow")
FAMILIES = ("ipv4", "ipv6", "any")
PROTOS = ("tcp", "udp", "icmp", "icmpv6", "any")
DIRECTIONS = ("ingress", "egress")
# the ICMP types a rule may name: the names nft and ovs-ofctl both know by number
ICMP_TYPES = {
    "icmp": {"echo-reply": 0, "destination-unreachable": 3, "redirect": 5,
             "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
             "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
             "timestamp-reply": 14},
    "icmpv6": {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
               "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
               "mld-listener-query": 130, "mld-listener-report": 131,
               "nd-router-solicit": 133, "nd-router-advert": 134,
               "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136},
}  # fmt: skip
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
RULE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}/[0-9]{1,5}\Z")
PORT_RANGE = re.compile(r"([0-9]{1,5})-([0-9]{1,5})\Z")
PORT_KEYS = {"port", "mac", "groups", "ingress", "egress", "default_ingress", "default_egress"}
RULE_KEYS = {"id", "action", "family", "proto", "ports", "icmp_types", "peers", "log"}


class Invalid(vnet_core.ModuleError):
    """The IR is not of the shape above: what and where."""


def validate(ir):
    """`ir` checked and normalized (MACs lower case, peers as networks, ports as ints or
    "low-high", every key present); Invalid, naming the place, otherwise."""
    if not isinstance(ir, dict) or set(ir) != {"bridge", "ports"}:
        raise Invalid("microseg: the policy is {bridge, ports}, not %r" % (_keys(ir),))
    bridge = _ifname(ir["bridge"], "microseg bridge")
    if not isinstance(ir["ports"], list):
        raise Invalid("microseg: ports is a list")
    ports, seen = [], set()
    for i, port in enumerate(ir["ports"]):
        port = _port(port, "microseg ports[%d]" % i)
        for key in ("mac", "port"):
            if port.get(key) is not None and (key, port[key]) in seen:
                raise Invalid("microseg ports[%d]: %s %s is listed twice" % (i, key, port[key]))
            seen.add((key, port.get(key)))
        ports.append(port)
    return {"bridge": bridge, "ports": ports}


def _keys(value):
    return sorted(value) if isinstance(value, dict) else type(value).__name__


def _ifname(name, where):
    problem = vnet_core.ifname_problem(name)
    if problem:
        raise Invalid("%s: %r is not an interface name: %s" % (where, name, problem))
    return name


def _port(port, where):
    if not isinstance(port, dict) or not {"mac", "groups"} <= set(port) <= PORT_KEYS:
        raise Invalid("%s: a port has mac, groups, ingress, egress, defaults (and port), "
                      "not %r" % (where, _keys(port)))  # fmt: skip
    mac = port["mac"]
    if not isinstance(mac, str) or not MAC.match(mac.lower()):
        raise Invalid("%s: mac %r is not a MAC address (aa:bb:cc:dd:ee:ff)" % (where, mac))
    out = {"port": None if port.get("port") is None else _ifname(port["port"], where),
           "mac": mac.lower(), "groups": _names(port["groups"], where + " groups")}  # fmt: skip
    for direction in DIRECTIONS:
        rules = port.get(direction, [])
        if not isinstance(rules, list):
            raise Invalid("%s: %s is a list of rules" % (where, direction))
        out[direction] = [
            _rule(r, "%s %s[%d]" % (where, direction, n)) for n, r in enumerate(rules)
        ]
        default = port.get("default_" + direction, "drop")
        if default not in DEFAULTS:
            choices = "|".join(DEFAULTS)
            raise Invalid(
                "%s: default_%s is one of %s, not %r" % (where, direction, choices, default)
            )
        out["default_" + direction] = default
    return out


def _names(names, where):
    if not isinstance(names, list) or not all(
        isinstance(n, str) and vnet_core.object_name_problem(n) is None for n in names
    ):
        raise Invalid("%s: a list of group names (letters, digits, '.', '_', '-')" % where)
    return list(names)


def _rule(rule, where):
    if not isinstance(rule, dict) or not {"id", "action"} <= set(rule) <= RULE_KEYS:
        raise Invalid("%s: a rule has id, action, family, proto, ports, icmp_types, peers, "
                      "log; not %r" % (where, _keys(rule)))  # fmt: skip
    if not isinstance(rule["id"], str) or not RULE_ID.match(rule["id"]):
        raise Invalid("%s: id %r is not group/index" % (where, rule["id"]))
    out = {"id": rule["id"]}
    for key, choices, default in (("action", ACTIONS, None), ("family", FAMILIES, "any"),
                                  ("proto", PROTOS, "any")):  # fmt: skip
        value = rule.get(key, default)
        if value not in choices:
            raise Invalid("%s: %s is one of %s, not %r" % (where, key, "|".join(choices), value))
        out[key] = value
    proto = out["proto"]
    if proto == "icmp" and out["family"] == "ipv6" or proto == "icmpv6" and out["family"] == "ipv4":
        raise Invalid("%s: proto %s with family %s matches nothing" % (where, proto, out["family"]))
    out["ports"] = _ports(rule.get("ports") or [], proto, where)
    out["icmp_types"] = _icmp_types(rule.get("icmp_types") or [], proto, where)
    out["peers"] = _peers(rule.get("peers", ["any"]), where)
    if not isinstance(rule.get("log", False), bool):
        raise Invalid("%s: log is true or false" % where)
    out["log"] = rule.get("log", False)
    return out


def _ports(ports, proto, where):
    if ports and proto not in ("tcp", "udp"):
        raise Invalid("%s: ports need proto tcp or udp (not %s)" % (where, proto))
    out = []
    for port in ports if isinstance(ports, list) else [ports]:
        match = PORT_RANGE.match(port) if isinstance(port, str) else None
        low, high = (int(match.group(1)), int(match.group(2))) if match else (port, port)
        if isinstance(port, str) and not match and port.isdigit():
            low = high = int(port)
        if isinstance(low, bool) or not isinstance(low, int) or not 1 <= low <= high <= 65535:
            raise Invalid("%s: port %r is not 1-65535 or LOW-HIGH" % (where, port))
        out.append(low if low == high else "%d-%d" % (low, high))
    return out


def _icmp_types(types, proto, where):
    if types and proto not in ICMP_TYPES:
        raise Invalid("%s: icmp_types need proto icmp or icmpv6 (not %s)" % (where, proto))
    known = ICMP_TYPES.get(proto, {})
    for name in types if isinstance(types, list) else [types]:
        if name not in known:
            raise Invalid("%s: %r is not an %s type this tool knows (%s)" % (
                where, name, proto, ", ".join(sorted(known))))  # fmt: skip
    return list(types)


def _peers(peers, where):
    if not isinstance(peers, list):
        raise Invalid("%s: peers is a list of networks, or [any]" % where)
    if "any" in peers:
        if len(peers) != 1:
            raise Invalid("%s: peers [any] stands alone" % where)
        return ["any"]
    out = []
    for peer in peers:
        try:
            net = vnet_core.ip_value(lambda t: ipaddress.ip_network(t, strict=False), peer)
        except ValueError as err:
            raise Invalid(
                "%s: peer %r is not an address or network: %s" % (where, peer, err)
            ) from None
        if str(net) not in out:
            out.append(str(net))
    return out


def families(rule):
    """The IP versions a rule matches (4, 6): by family, proto and peers."""
    versions = {"ipv4": {4}, "ipv6": {6}, "any": {4, 6}}[rule["family"]]
    versions &= {"icmp": {4}, "icmpv6": {6}}.get(rule["proto"], {4, 6})
    if rule["peers"] != ["any"]:
        versions &= {ipaddress.ip_network(p).version for p in rule["peers"]}
    return sorted(versions)


def peers_of(rule, version):
    """A rule's peers of one IP version; None for any."""
    if rule["peers"] == ["any"]:
        return None
    return [p for p in rule["peers"] if ipaddress.ip_network(p).version == version]


STRICTNESS = ("drop", "reject", "allow")


def strictest(defaults):
    """A VM in several groups: the strictest of their defaults (drop, reject, allow)."""
    return min(defaults, key=STRICTNESS.index)
