"""Micro-segmentation on a Linux bridge (security_groups): a host's policy
(vnet_microseg_ir) compiled to nftables, in vnetctl's own table `inet vnetctl_microseg`.

Why `inet` and not `bridge`: stateful filtering of bridged frames in the bridge family
needs the kernel's nf_conntrack_bridge (CONFIG_NF_CONNTRACK_BRIDGE); a kernel without it
refuses any `ct` expression there ("Protocol error"). br_netfilter
(net.bridge.bridge-nf-call-iptables and -ip6tables = 1) passes bridged IPv4 and IPv6
through the inet hooks instead, with conntrack: the module sets both. Consequences an
operator sees: every bridged IP packet of the host also meets the host's other inet/ip
tables (their forward chains decide too); ARP and other non-IP frames never reach this
table; `reject` is compiled as a drop (an answer to a bridged packet would be routed by
the host, which has no route to the guest: measured, nothing comes back).

    chain forward (hook forward)   established,related: accept; neighbour discovery:
                                   accept; a port's MAC as source: jump out_MAC (its
                                   egress), as destination: jump in_MAC (its ingress)
    chain out_MAC                  egress rules in order: allowed returns (the
                                   destination's ingress decides next), denied drops;
                                   last, the default
    chain in_MAC                   ingress rules: allowed accepts; last, the default

Ports are matched by their guest's MAC: a port made again (a restarted VM, another
name, another host) is covered from its first frame. Every rule carries a comment, its
name and a hash of its chain and text (vnet_nft_portsec.comment): read back from `nft
list`, a rule whose text no longer has its hash (changed by hand) reads as `NAME.changed`,
one removed is missing; either makes the table differ and it is written again whole.
The table is replaced in one `nft -f` transaction; no other table is read or touched.

Runs on the managed host: Python 3.9+, standard library only.
"""

import ipaddress
import re

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_microseg_ir
    from ansible.module_utils import vnet_nft_portsec as nftsec
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_microseg_ir
    import vnet_nft_portsec as nftsec

TABLE = "vnetctl_microseg"
BASE = "forward"
BASE_SPEC = "{ type filter hook forward priority 0 ; policy accept ; }"
ESTABLISHED = "ct state established,related accept"
ND = ("icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
      "nd-neighbor-advert } accept")  # fmt: skip
SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")


def _parse_ruleset(output):
    """{chain: [rule text as nft prints it, quotes removed]} of vnetctl's table in
    `nft list ruleset inet`; {} without the table."""
    chains, chain, inside = {}, None, False
    for raw in output.splitlines():
        text = raw.strip()
        if raw.startswith("table "):
            inside = text == "table inet %s {" % TABLE
        elif inside and text.startswith("chain ") and text.endswith("{"):
            chain = text.split(" ")[1]
            chains[chain] = []
        elif inside and chain and text and text != "}" and not text.startswith("type "):
            chains[chain].append(canonical(text.replace('"', "")))
    return chains


SET = re.compile(r"(\w+ \w+) \{ ([^}]*) \}")


def canonical(text):
    """A rule's text with each anonymous set `{ ... }` in one form whatever its order:
    nft sorts the elements it prints, and merges adjacent ones when the set holds a range
    or a prefix. Ports and addresses become merged intervals (a prefix where one is
    exactly that), ICMP types go by number. Still valid nft (a rollback writes it)."""
    return SET.sub(lambda m: "%s { %s }" % (m.group(1), ", ".join(_elements(*m.groups()))), text)


def _elements(before, listed):
    items = listed.split(", ")
    kind = before.split(" ")[0]
    if kind in vnet_microseg_ir.ICMP_TYPES:
        known = vnet_microseg_ir.ICMP_TYPES[kind]
        return sorted(items, key=lambda n: known.get(n, 999))
    if kind in ("ip", "ip6"):
        spans = [_span(i) for i in items]
        return [_address_text(lo, hi, kind) for lo, hi in _merged(spans)]
    spans = [tuple(int(x) for x in (i.split("-") if "-" in i else (i, i))) for i in items]
    return ["%d" % lo if lo == hi else "%d-%d" % (lo, hi) for lo, hi in _merged(spans)]


def _span(item):
    if "-" in item:
        lo, hi = item.split("-")
        return int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi))
    net = ipaddress.ip_network(item, strict=False)
    return int(net.network_address), int(net.broadcast_address)


def _merged(spans):
    out = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _address_text(lo, hi, kind):
    make = ipaddress.IPv4Address if kind == "ip" else ipaddress.IPv6Address
    nets = list(ipaddress.summarize_address_range(make(lo), make(hi)))
    if len(nets) == 1:
        return _short(str(nets[0]))
    return "%s-%s" % (make(lo), make(hi))


SOURCE = vnet_facts.command(["nft", "list", "ruleset", "inet"], parse=_parse_ruleset,
                            optional=True)  # fmt: skip
BR_NF = vnet_facts.command(["sysctl", "-n", *SYSCTLS], optional=True,
                           parse=lambda out: dict(zip(("ipv4", "ipv6"), out.split())))  # fmt: skip


def read(facts):
    """{chain: {position: "rule text comment NAME.HASH"}} of the table, as nft prints
    it ({} without the table; None where nft cannot run): a rule changed by hand reads
    as its new text, one removed is missing, and the state is enough to write the table
    again (a rollback)."""
    chains = facts.get("nft_microseg")
    if chains is None:
        return None
    return {chain: _positions(rules) for chain, rules in chains.items()}


def _positions(texts):
    return {"%04d" % i: t for i, t in enumerate(texts)}


# ---- compiling -------------------------------------------------------------------------


def chain_of(direction, mac):
    return "%s_%s" % ("in" if direction == "ingress" else "out", mac.replace(":", ""))


def compile_ir(ir):
    """{chain: [(name, rule text)]} of a validated policy."""
    ports = sorted(ir["ports"], key=lambda p: p["mac"])
    base = [("established", ESTABLISHED), ("nd", ND)]
    base += [("egress-" + p["mac"].replace(":", ""),
              "ether saddr %s jump %s" % (p["mac"], chain_of("egress", p["mac"])))
             for p in ports]  # fmt: skip
    base += [("ingress-" + p["mac"].replace(":", ""),
              "ether daddr %s jump %s" % (p["mac"], chain_of("ingress", p["mac"])))
             for p in ports]  # fmt: skip
    chains = {BASE: base}
    for port in ports:
        for direction in vnet_microseg_ir.DIRECTIONS:
            rules = [r for rule in port[direction] for r in rule_lines(rule, direction)]
            default = port["default_" + direction]
            rules.append(("default", _verdict("allow" if default == "allow" else "deny",
                                              direction)))  # fmt: skip
            chains[chain_of(direction, port["mac"])] = rules
    return chains


def desired(ir):
    """What read() gives once `ir` is applied ({} for no port: no table)."""
    if not ir["ports"]:
        return {}
    return {chain: _positions(["%s comment %s" % (canonical(t), nftsec.comment(chain, n, t))
                               for n, t in rules])
            for chain, rules in compile_ir(ir).items()}  # fmt: skip


def rule_lines(rule, direction):
    """[(name, text)] of one rule: one per IP version when it names peers (a rule
    whose peers are all of another version, or none, gives nothing)."""
    versions = vnet_microseg_ir.families(rule)
    l4 = _l4(rule)
    tail = [] if not rule["log"] else ["log", "prefix", "microseg-" + rule["id"]]
    tail.append(_verdict(rule["action"], direction))
    if rule["peers"] == ["any"]:
        if not versions:
            return []
        qualifier = []
        if len(versions) == 1 and rule["proto"] not in ("icmp", "icmpv6"):
            qualifier = ["meta", "nfproto", "ipv%d" % versions[0]]
        return [(rule["id"], " ".join(qualifier + l4 + tail))]
    field = "saddr" if direction == "ingress" else "daddr"
    out = []
    for version in versions:
        nets = [_short(p) for p in vnet_microseg_ir.peers_of(rule, version)]
        words = ["ip" if version == 4 else "ip6", field] + _one_or_set(nets)
        out.append(("%s-v%d" % (rule["id"], version), " ".join(words + l4 + tail)))
    return out


def _l4(rule):
    proto = rule["proto"]
    if proto in ("tcp", "udp"):
        ports = [str(p) for p in rule["ports"]]
        return [proto, "dport"] + _one_or_set(ports) if ports else ["meta", "l4proto", proto]
    if proto in ("icmp", "icmpv6"):
        types = rule["icmp_types"]
        if types:
            return [proto, "type"] + _one_or_set(types)
        return ["meta", "l4proto", "icmp" if proto == "icmp" else "ipv6-icmp"]
    return []


def _verdict(action, direction):
    if action == "allow":
        return "accept" if direction == "ingress" else "return"
    return "drop"  # deny; reject too (see the docstring)


def _one_or_set(values):
    return list(values) if len(values) == 1 else ["{", ", ".join(values), "}"]


def _short(net):
    """A network as nft prints it: a host without its prefix length."""
    net = ipaddress.ip_network(net)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


# ---- writing ---------------------------------------------------------------------------


def rebuild_steps(chains):
    """The table as `chains` (read() or desired() state) in one transaction: removed,
    and written again whole when it has a chain."""
    out = [_nft("add", "table", "inet", TABLE), _nft("delete", "table", "inet", TABLE)]
    if not chains:
        return out
    out.append(_nft("add", "table", "inet", TABLE))
    for chain in sorted(chains, key=lambda c: c != BASE):
        out.append(_nft("add", "chain", "inet", TABLE, chain, *(
            BASE_SPEC.split(" ") if chain == BASE else ())))  # fmt: skip
    for chain in sorted(chains, key=lambda c: c != BASE):
        for _, text in sorted(chains[chain].items()):
            out.append(_nft("add", "rule", "inet", TABLE, chain, *_words(text)))
    return out


def _words(text):
    """A rule's text as words for the line writer; a set's `a, b` stays `a,` `b`."""
    return text.split(" ")


def _nft(*words):
    return vnet_core.step("nft", *words)
