"""Micro-segmentation on an Open vSwitch bridge: one host's per-port policy (the IR of
vnet_microseg_ir, already validated) compiled to conntrack flows under vnetctl's cookies,
read back from `ovs-ofctl dump-flows`, and planned as one atomic bundle.

Pipeline (tables 40-43 are this module's; table 0 is port security's, vnet_ovs_portsec),
for IP and IPv6 frames whose reg6 bit 0 is clear, above port security's priorities
(100-130, its gate 1-2):
- table 0, 210: ICMPv6 130-137 and 143 (MLD, router and neighbour discovery, redirects)
  and DHCP (UDP 68->67, 67->68, 546->547, 547->546) PASS unchecked. ARP is not IP: never
  seen here. 202: from a member's port with its MAC: ct(zone=Z, table=40). 201: a
  member's MAC from any other port, or its port with another MAC: drop. A VM port made
  again (a new OpenFlow number) sends no IP, replies included, until plan() runs, with
  or without port security's gate. 200: to a member's MAC: ct(zone=Z, table=40).
- 40 (state): +inv drop; +est or +rel PASS (return traffic); +new to 41; else drop.
- 41 (egress, the sender's rules, by in_port and MAC): in list order (priority 40000 -
  position, first match wins), then the port's default (100); allow goes to 42.
- 42 (ingress, the receiver's rules, by dl_dst MAC): the same way; allow goes to 43.
- 43: ct(commit, zone=Z), then PASS.
Z, the conntrack zone, is the bridge's own (zone()): bridges whose tenants' addresses
overlap keep their connections apart (VLANs on one bridge share it).
PASS = set reg6 bit 0 and resubmit to table 0: the frame then meets port security's rules
(or the bridge's own NORMAL) as if microseg were not there. Port security runs after
microseg: a frame it drops may have left a conntrack entry.

Not expressible here: reject (no OpenFlow action answers with a TCP RST or an ICMP
error without a controller): compiled as drop, its note says "reject". Log: no
controller() to send to; every rule's flows carry the rule's own cookie (dump-flows
cookie=C/-1 gives its packet count) and a note naming it ("allow+log" where the rule
asks for a log: a counter to read, no log line). Two rules whose 24-bit cookie hashes meet share a
counter; read() goes by the notes. A rule removed does not cut connections already
established (conntrack keeps them until they end). Ingress rules see unicast
frames to the member's MAC; broadcast and multicast IP reach members unfiltered.

Runs on the managed host: Python 3.9+, standard library only.
"""

import ipaddress
import zlib

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_ovs_config
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_ovs_config

# group bits 0, low 32 bits 0x6dXXXXXX ("m"): no port group's cookie, not the gate's
MARK = 0x6D000000
BASE = vnet_ovs_config.COOKIE_OWNER | MARK
MASK = vnet_ovs_config.OWNER_MASK | vnet_ovs_config.GROUP_MASK | 0xFF000000
STATE, EGRESS, INGRESS, COMMIT = 40, 41, 42, 43
EXEMPT, HOOK_OWN, GUARD, HOOK = 210, 202, 201, 200
RULE_TOP, DEFAULT = 40000, 100
PASS = "load:0x1->NXM_NX_REG6[0],resubmit(,0)"
UNMARKED = {"reg6": "0/0x1"}
STATS = ("duration", "n_packets", "n_bytes", "idle_age", "hard_age")
PROTO = {  # (proto, family) -> OVS's protocol word
    ("any", "ipv4"): "ip", ("any", "ipv6"): "ipv6", ("tcp", "ipv4"): "tcp",
    ("tcp", "ipv6"): "tcp6", ("udp", "ipv4"): "udp", ("udp", "ipv6"): "udp6",
    ("icmp", "ipv4"): "icmp", ("icmpv6", "ipv6"): "icmp6",
}  # fmt: skip
ICMP = {"echo-reply": 0, "destination-unreachable": 3, "redirect": 5, "echo-request": 8,
        "router-advertisement": 9, "router-solicitation": 10, "time-exceeded": 11,
        "parameter-problem": 12, "timestamp-request": 13, "timestamp-reply": 14}  # fmt: skip
ICMP6 = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
         "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
         "nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
         "nd-neighbor-advert": 136}  # fmt: skip
EXEMPT_ICMP6 = (130, 131, 132, 133, 134, 135, 136, 137, 143)
DHCP = (("udp", 68, 67), ("udp", 67, 68), ("udp6", 546, 547), ("udp6", 547, 546))


def port_masks(lo, hi):
    """The fewest (value, mask) pairs covering ports lo..hi, as OVS matches tp_dst."""
    out = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << 16
        while size > hi - lo + 1:
            size >>= 1
        out.append((lo, 0xFFFF & ~(size - 1)))
        lo += size
    return out


def tp_values(ports):
    """tp_dst values as OVS prints them: "443", or "0x1f40/0xffc0"; [] for every port."""
    out = []
    for p in ports:
        lo, _, hi = str(p).partition("-")
        for value, mask in port_masks(int(lo), int(hi or lo)):
            if mask == 0:  # 0-65535
                return []
            out.append(str(value) if mask == 0xFFFF else "%#x/%#x" % (value, mask))
    return out


def _peer(text, direction):
    """(family, {field: value}) of one peer; "any": (None, {})."""
    if text == "any":
        return None, {}
    net = ipaddress.ip_network(text, strict=False)
    v4 = net.version == 4
    field = ("nw_" if v4 else "ipv6_") + ("dst" if direction == "egress" else "src")
    full = net.prefixlen == net.max_prefixlen
    return "ipv4" if v4 else "ipv6", {field: str(net.network_address) if full else str(net)}


def _icmp(name, family):
    if isinstance(name, int) or str(name).isdigit():
        return str(int(name))
    return str((ICMP if family == "ipv4" else ICMP6)[name])


def note(text):
    """A note action carrying `text`, padded as OVS prints it back (10 + n bytes, n % 8 == 6)."""
    data = text.encode()
    data += b"\0" * ((6 - len(data)) % 8)
    return "note:" + ".".join("%02x" % b for b in data)


def unnote(actions):
    """The text of a flow's note, or None."""
    for action in actions.split(","):
        if action.startswith("note:"):
            return bytes(int(h, 16) for h in action[5:].split(".")).rstrip(b"\0").decode()
    return None


def rule_cookie(mac, direction, rule_id):
    key = "%s %s %s" % (mac, direction, rule_id)
    return BASE | (zlib.crc32(key.encode()) & 0xFFFFFF or 1)


def _flow(cookie, table, priority, protocol, match, actions):
    return {"cookie": cookie, "table": table, "priority": str(priority), "match": match,
            "protocols": [protocol] if protocol else [], "actions": actions}  # fmt: skip


def labelled(mac, direction, rule_id, what, then=None):
    """(cookie, actions) of a port's flows: the rule's own cookie, and a note naming the
    port, direction, rule and verdict before `then` (none: the note alone, a drop)."""
    label = note("%s %s %s %s" % (mac, direction, rule_id, what))
    return rule_cookie(mac, direction, rule_id), label + ("," + then if then else "")


def rule_flows(rule, direction, who, then, position):
    """A rule's flows: `who` the port's own match (in_port and MAC, or dl_dst)."""
    mac = who.get("dl_src") or who["dl_dst"]
    allow = then if rule["action"] == "allow" else None
    what = rule["action"] + ("+log" if rule.get("log") else "")
    cookie, actions = labelled(mac, direction, rule["id"], what, allow)
    proto, out = rule.get("proto", "any"), []
    peers = [_peer(p, direction) for p in rule.get("peers", ["any"])]
    for family in ("ipv4", "ipv6"):
        if rule.get("family", "any") not in ("any", family) or (proto, family) not in PROTO:
            continue
        ports = tp_values(rule.get("ports") or []) if proto in ("tcp", "udp") else []
        types = [_icmp(t, family) for t in rule.get("icmp_types") or []]
        l4 = [{"tp_dst": v} for v in ports] + [{"icmp_type": t} for t in types] or [{}]
        for fam, peer in peers:
            if fam not in (None, family):
                continue
            for extra in l4:
                match = dict(who, **peer, **extra)
                out.append(_flow(cookie, _table(direction), RULE_TOP - position,
                                 PROTO[proto, family], match, actions))  # fmt: skip
    return out


def _table(direction):
    return EGRESS if direction == "egress" else INGRESS


def zone(bridge):
    return zlib.crc32(bridge.encode()) & 0xFFFF


def port_flows(port, ofport, zone_id):
    """One member's flows: table 0's hooks and guards, its rules and defaults (egress
    ones only with `ofport`: a port not made yet sends nothing)."""
    mac, out = port["mac"], []
    ct = "ct(table=%d,zone=%d)" % (STATE, zone_id)
    sides = [("ingress", {"dl_dst": mac}, "resubmit(,%d)" % COMMIT)]
    table0 = [(HOOK, {"dl_dst": mac}, "ingress", "hook", "ct", ct),
              (GUARD, {"dl_src": mac}, "egress", "guard", "foreign-port", None)]  # fmt: skip
    if ofport is not None:
        own = {"in_port": str(ofport), "dl_src": mac}
        sides.insert(0, ("egress", own, "resubmit(,%d)" % INGRESS))
        port_only = {"in_port": str(ofport)}
        table0 += [(HOOK_OWN, own, "egress", "hook", "ct", ct),
                   (GUARD, port_only, "egress", "guard", "wrong-mac", None)]  # fmt: skip
    for priority, match, direction, rule_id, what, then in table0:
        cookie, actions = labelled(mac, direction, rule_id, what, then)
        out += [_flow(cookie, 0, priority, proto, dict(UNMARKED, **match), actions)
                for proto in ("ip", "ipv6")]  # fmt: skip
    for direction, who, then in sides:
        for position, rule in enumerate(port.get(direction) or []):
            out += rule_flows(rule, direction, who, then, position)
        default = port.get("default_" + direction, "allow")
        allow = then if default == "allow" else None
        cookie, actions = labelled(mac, direction, "default", default, allow)
        out.append(_flow(cookie, _table(direction), DEFAULT, None, who, actions))
    return out


def shared_flows(zone_id):
    """The pipeline's own flows, one set per bridge with members."""
    out = [_flow(BASE, 0, EXEMPT, "icmp6", dict(UNMARKED, icmp_type=str(t)), PASS)
           for t in EXEMPT_ICMP6]  # fmt: skip
    out += [_flow(BASE, 0, EXEMPT, proto, dict(UNMARKED, tp_src=str(s), tp_dst=str(d)), PASS)
            for proto, s, d in DHCP]  # fmt: skip
    out += [
        _flow(BASE, STATE, 300, None, {"ct_state": "+inv+trk"}, "drop"),
        _flow(BASE, STATE, 200, None, {"ct_state": "+est+trk"}, PASS),
        _flow(BASE, STATE, 200, None, {"ct_state": "+rel+trk"}, PASS),
        _flow(BASE, STATE, 100, None, {"ct_state": "+new+trk"}, "resubmit(,%d)" % EGRESS),
        _flow(BASE, STATE, 0, None, {}, "drop"),
        _flow(BASE, EGRESS, 0, None, {}, "resubmit(,%d)" % INGRESS),
        _flow(BASE, INGRESS, 0, None, {}, "resubmit(,%d)" % COMMIT),
    ]
    out += [_flow(BASE, COMMIT, 0, proto, {}, "ct(commit,zone=%d),%s" % (zone_id, PASS))
            for proto in ("ip", "ipv6")]  # ct needs the network protocol  # fmt: skip
    return out


def compile_ir(ir, port_numbers):
    """Every flow of the bridge's policy, as dicts (see _flow)."""
    ports = ir.get("ports") or []
    zone_id = zone(ir["bridge"])
    out = shared_flows(zone_id) if ports else []
    for port in ports:
        out += port_flows(port, port_numbers.get(port.get("port")), zone_id)
    return out


def text(flow):
    """A flow as compared: the same text from compile_ir() and from a dumped flow."""
    words = ["cookie=%#x" % flow["cookie"], "table=%d" % flow["table"],
             "priority=%s" % flow["priority"]] + list(flow["protocols"])  # fmt: skip
    words += ["%s=%s" % (k, flow["match"][k]) for k in sorted(flow["match"])]
    return ",".join(words) + " actions=" + flow["actions"]


def flows(ir, port_numbers):
    """The bridge's policy as ovs-ofctl add-flow lines."""
    return [text(f).replace(" actions=", ",actions=") for f in compile_ir(ir, port_numbers)]


def _installed(parsed, port_numbers):
    """Dumped flows (vnet_ovs_config.parse_flows) that are microseg's, as _flow dicts;
    in_port names (a --names dump) turned back into numbers."""
    out = []
    for f in parsed:
        if f["cookie"] & MASK != BASE:
            continue
        skip = ("cookie", "table", "protocols", "actions", "priority") + STATS
        match = {k: v for k, v in f.items() if k not in skip}
        if "in_port" in match:  # a --names dump: the name (parse_flows unquoted it)
            name = match["in_port"]
            match["in_port"] = str((port_numbers or {}).get(name, name))
        protocols = [p for p in f["protocols"] if p not in ("reset_counts", "send_flow_rem")]
        out.append(_flow(f["cookie"], f["table"], f.get("priority", "32768"),
                         (protocols or [None])[0], match, f["actions"]))  # fmt: skip
    return out


def read(dump_flows_text, port_numbers=None):
    """What is installed: {"ports": {mac: {direction: {rule id: [flow texts]}}},
    "shared": [flow texts], "flows": [every microseg flow text]}."""
    parsed = dump_flows_text
    if isinstance(parsed, str):
        parsed = vnet_ovs_config.parse_flows(dump_flows_text)
    return summarize(_installed(parsed, port_numbers))


def summarize(flow_dicts):
    """Flows by port (MAC), direction and rule id, from their notes; "shared": the
    pipeline's own (cookie BASE); "unlabelled": a rule's cookie without its note (a
    flow changed by hand)."""
    ports, shared, unlabelled = {}, [], []
    for f in flow_dicts:
        label = unnote(f["actions"])
        if label is None:
            (shared if f["cookie"] == BASE else unlabelled).append(text(f))
            continue
        mac, direction, rest = label.split(" ", 2)
        rule_id = rest.rsplit(" ", 1)[0]
        sides = ports.setdefault(mac, {})
        sides.setdefault(direction, {}).setdefault(rule_id, []).append(text(f))
    for sides in ports.values():
        for rules in sides.values():
            for rule_id in rules:
                rules[rule_id].sort()
    everything = shared + unlabelled
    everything += [t for s in ports.values() for r in s.values() for ts in r.values() for t in ts]
    return {"ports": ports, "shared": sorted(shared), "unlabelled": sorted(unlabelled),
            "flows": sorted(everything)}  # fmt: skip


def desired(ir, port_numbers):
    return summarize(compile_ir(ir, port_numbers))


def plan(ir, facts):
    """ovs-ofctl steps from what is installed to the policy, for one bundle (atomic: the
    host runs a bridge's lines as one `ovs-ofctl --bundle add-flows`). Only flows under
    microseg's cookies are read or deleted. `facts`: {"flows": dump-flows text or
    parse_flows()'s dicts, "ofports": {ifname: OpenFlow port number}}, or the host's
    facts (vnet_facts.Facts) with the sources of FACTS below."""
    if not isinstance(facts, dict):
        facts = {"flows": facts.get("ovs_flows", ir["bridge"]) or [],
                 "ofports": ofports(facts)}  # fmt: skip
    numbers = facts.get("ofports") or {}
    have = set(read(facts.get("flows") or [], numbers)["flows"])
    want = set(desired(ir, numbers)["flows"])
    bridge = ir["bridge"]
    out = [vnet_core.step("ovs-ofctl", bridge, "delete_strict", _strict(t))
           for t in sorted(have - want)]  # fmt: skip
    out += [vnet_core.step("ovs-ofctl", bridge, "add", t.replace(" actions=", ",actions="))
            for t in sorted(want - have)]  # fmt: skip
    return out


def _strict(flow_text):
    """A flow text's match, exact cookie included, for delete_strict."""
    head = flow_text.partition(" actions=")[0]
    cookie, rest = head.split(",", 1)
    return "%s/%#x,%s" % (cookie, (1 << 64) - 1, rest)


def ofports(facts):
    """{interface: OpenFlow port number} from the play's one OVSDB read (vnet_ovs_config's
    interfaces; one without a number yet is left out)."""
    interfaces = (facts.get("ovs_config") or {}).get("interfaces") or {}
    return {name: i["ofport"] for name, i in interfaces.items()
            if isinstance(i.get("ofport"), int) and i["ofport"] > 0}  # fmt: skip


# facts a module planning with plan() gathers: the flows (vnetctl's cookies, --names)
# and every interface's OpenFlow port number (the configuration ovs_port_group reads)
FACTS = {"ovs_flows": vnet_ovs_config.FLOWS, "ovs_config": vnet_ovs_config.CONFIG}
