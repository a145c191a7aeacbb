"""Copies for promiscuous ports and inbound filters on Open vSwitch VM ports: vnetctl's
own nftables table in the netdev family, `netdev vnetctl` (port_group, ovs_port_group;
the settings are vnet_secpolicy's). Nothing else reads, changes or removes it.

A chain per job, named by the ports it serves ('/' is in no interface name):

    copy/P/D    promiscuous port P gets a copy of what enters the bridge from port D
                (hook ingress on D): every unicast frame but those to P's own MAC (the
                bridge delivers those, and broadcast and multicast, to P itself), and,
                when D's forged transmits are rejected, only frames from D's MAC (what
                the bridge then drops is not copied). The copy goes straight to P:
                past the bridge, its filters and OVS's flows.
    inbound/P   mac_changes reject on an Open vSwitch port (hook egress on P): unicast
                frames for any MAC but P's vNIC's are dropped on their way to the VM.
                (OpenFlow's NORMAL action decides where a frame goes with no step after
                it; a Linux bridge does this in vnet_nft_portsec's table instead.) Not
                on a promiscuous port, whose copies must reach it.

A chain is read back as what it does, from its rules, each commented with its name and a
hash of its text (vnet_nft_portsec.comment), and said in one line (describe(): `copy/P/D
dst=MAC src=MAC|-`, `inbound/P mac=MAC`, `NAME other`): a task's state holds the lines of
its chains, a list, so a chain missing, extra or other is one item of a diff. A rule not
as vnetctl writes it makes the chain "other", rewritten whole. A chain whose
copy target was made again (a restarted VM: a new ifindex, which `dup` holds) reads as
its old number and is rewritten too. Chains are added and removed whole, in the task's
one nft transaction. The egress hook needs Linux 5.16 and nft 1.0.1; ingress and `dup`,
Linux 4.5.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts
    from ansible.module_utils import vnet_nft_portsec as nftsec
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_nft_portsec as nftsec

TABLE = "vnetctl"
GROUP_DESTINATION = "@ll,0,8 & 0x1 == 0x1 return"  # broadcast and multicast: bit 0 of byte 0
OTHER = "other"


def copy_chain(to, device):
    return "copy/%s/%s" % (to, device)


def inbound_chain(port):
    return "inbound/%s" % port


def copy(to, device, dst, src):
    """The chain copying to `to` (MAC `dst`) what enters from `device` (guarded: `src`,
    its MAC, else None)."""
    return {"kind": "copy", "to": to, "device": device, "dst": dst, "src": src}


def inbound(port, mac):
    return {"kind": "inbound", "port": port, "device": port, "mac": mac}


def describe(name, spec):
    """A chain in one line (see the docstring)."""
    if spec == OTHER:
        return "%s %s" % (name, OTHER)
    if spec["kind"] == "inbound":
        return "%s mac=%s" % (name, spec["mac"])
    return "%s dst=%s src=%s" % (name, spec["dst"], spec["src"] or "-")


def parse(line):
    """(name, spec) of a describe() line."""
    name, _, rest = line.partition(" ")
    values = dict(w.partition("=")[::2] for w in rest.split(" ") if "=" in w)
    to, device = ports_of(name)
    if rest == OTHER or to is None:
        return name, OTHER
    if name.startswith("inbound/"):
        return name, inbound(to, values.get("mac"))
    src = values.get("src")
    return name, copy(to, device, values.get("dst"), None if src in (None, "-") else src)


def lines(chains_by_name):
    return sorted(describe(n, c) for n, c in chains_by_name.items())


def _rules(spec):
    """[(name, text)] of a chain's rules, in order."""
    if spec["kind"] == "inbound":
        return [("group-destination", GROUP_DESTINATION),
                ("other-destination", "ether daddr != %s drop" % spec["mac"])]  # fmt: skip
    rules = [("group-destination", GROUP_DESTINATION),
             ("own-destination", "ether daddr %s return" % spec["dst"])]  # fmt: skip
    if spec["src"]:
        rules.append(("forged-source", "ether saddr != %s return" % spec["src"]))
    return rules + [("copy", "dup to %s" % spec["to"])]


def _hook(spec):
    return "egress" if spec["kind"] == "inbound" else "ingress"


def ports_of(name):
    """The ports a chain's name says it serves: (P, D) of copy/P/D, (P, P) of inbound/P."""
    parts = name.split("/")
    if parts[0] == "copy" and len(parts) == 3:
        return parts[1], parts[2]
    return (parts[1], parts[1]) if parts[0] == "inbound" and len(parts) == 2 else (None, None)


# ---- reading ---------------------------------------------------------------------------

SOURCE = vnet_facts.command(["nft", "-j", "list", "ruleset", "netdev"], optional=True)


def read(facts):
    """The table's chains (chains()) from the `nft_netdev` fact; facts recorded before
    the table existed hold none."""
    try:
        return chains(facts.get("nft_netdev"))
    except vnet_facts.Missing:
        return {}


def chains(ruleset):
    """{chain name: spec, or "other"} of vnetctl's netdev table from `nft -j list ruleset
    netdev` (None: nft could not be run; no table: {})."""
    if ruleset is None:
        return None
    rules = {}
    for kind, body in nftsec.items(ruleset, TABLE):
        if kind == "chain":
            rules.setdefault(body["name"], [])
        elif kind == "rule":
            rules.setdefault(body["chain"], []).append(body)
    return {name: _spec(name, found) for name, found in rules.items()}


def _spec(name, rules):
    """What a chain does, from its rules' values, if each rule is as vnetctl writes it."""
    to, device = ports_of(name)
    if to is None:
        return OTHER
    values = {}
    for rule in rules:
        for expr in rule.get("expr", []):
            match = expr.get("match") or {}
            field = (match.get("left") or {}).get("payload", {}).get("field")
            if field:
                values[(field, match.get("op"))] = match.get("right")
            if "dup" in expr:
                values["dup"] = str(expr["dup"].get("addr", expr["dup"].get("dev")))
    if name.startswith("inbound/"):
        spec = inbound(to, values.get(("daddr", "!=")) or "")
    else:
        spec = copy(values.get("dup") or "", device, values.get(("daddr", "==")) or "",
                    values.get(("saddr", "!=")))  # fmt: skip
    written = [nftsec.comment(name, n, text) for n, text in _rules(spec)]
    same = [r.get("comment") for r in rules] == written and spec.get("to", to) == to
    return spec if same else OTHER


# ---- writing ---------------------------------------------------------------------------


def steps(have, want):
    """nft steps from chains `have` to chains `want` (describe() lines): a chain that
    differs is removed and added again; the table is added (never removed) first."""
    have, want = dict(map(parse, have)), dict(map(parse, want))
    gone = sorted(n for n in have if n not in want or have[n] != want[n])
    new = sorted(n for n in want if have.get(n) != want[n] and want[n] != OTHER)
    out = [_nft("add", "table", "netdev", TABLE)] if gone or new else []
    for name in gone:
        out += [_nft("flush", "chain", "netdev", TABLE, name),
                _nft("delete", "chain", "netdev", TABLE, name)]  # fmt: skip
    for name in new:
        spec = want[name]
        out.append(
            _nft(
                "add",
                "chain",
                "netdev",
                TABLE,
                name,
                "{",
                "type",
                "filter",
                "hook",
                _hook(spec),
                "device",
                spec["device"],
                "priority",
                "0",
                ";",
                "}",
            )
        )
        out += [
            _nft(
                "add",
                "rule",
                "netdev",
                TABLE,
                name,
                *text.split(" "),
                "comment",
                nftsec.comment(name, rule, text),
            )
            for rule, text in _rules(spec)
        ]
    return out


def _nft(*words):
    return vnet_core.step("nft", *words)
