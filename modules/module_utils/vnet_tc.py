"""tc as modules read it: one fact source, `tc` (source()): `tc -j -s qdisc show` for
every device at once, then classes (`tc -j -d class show dev D`) and filters (`tc -j
filter show dev D`) of the devices with an HTB root only, ingress filters of those with
an ingress or clsact qdisc only: {"qdiscs": {dev: [qdisc]}, "classes": {dev: {classid:
class}}, "filters": {dev: [rule]}, "ingress": {dev: [rule]}}; rates in kbit/s. A filter
is a RULE: {"pref", "proto" (ip, ipv6, all, 802.1q), "flowid" or "redirect", and what it
matches: "fields" (u32 on IPv4/IPv6 headers: dscp, protocol, src, dst, sport, dport,
ports as (value, mask) blocks), "vlan" (flower), "fwmark" (fw), "keys" (raw u32 keys no
field names) or "kind" alone (a classifier not read)}; text() is how state and drift
show it, command() the `tc filter add` that makes it.

Runs on the managed host: Python 3.9+, standard library only.
"""

import _json  # json's C half: the json package imports re and enum, a cost for every host

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_htb
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_htb

PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
             "icmpv6": 58, "sctp": 132, "udplite": 136}  # fmt: skip
PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}
# header byte offsets (from the network header) that u32 keys of a rule cover
LAYOUT = {
    "ip": {"protocol": 9, "src": (12, 4), "dst": (16, 4), "sport": 20, "dport": 22},
    "ipv6": {"protocol": 6, "src": (8, 16), "dst": (24, 16), "sport": 40, "dport": 42},
}
parse_rate, format_rate = vnet_htb.parse_rate, vnet_htb.format_rate


class _Reader:
    """What _json.make_scanner reads of a decoder; `pairs`: its object_pairs_hook."""

    strict, object_hook, parse_float, parse_int, memo = True, None, float, int, None
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf")}.__getitem__

    def __init__(self, pairs=None):
        self.object_pairs_hook = pairs


def loads(text, scan=None):
    """One JSON document (json.loads without the json package)."""
    try:
        value, end = (scan or _SCAN)(text.strip(), 0)
    except StopIteration:
        raise vnet_core.ModuleError("tc printed what is not JSON: %r" % text[:80]) from None
    if end != len(text.strip()):
        raise vnet_core.ModuleError("tc printed more than one JSON document")
    return value


# ---- gathering -------------------------------------------------------------------


def source():
    """The `tc` fact source (None where tc is missing or fails)."""
    return vnet_facts.grouped(gather, {}, parse)


def gather(sources, runner):
    try:
        raw = {"qdiscs": runner(["tc", "-j", "-s", "qdisc", "show"])}
        for dev, kinds in sorted(_kinds_by_device(raw["qdiscs"]).items()):
            dev = vnet_core.check_ifname(dev)
            shows = (
                {"classes": ["-d", "class"], "filters": ["filter"]} if "htb-root" in kinds else {}
            )
            if kinds & {"ingress", "clsact"}:
                shows["ingress"] = ["filter"]
            for key, what in shows.items():
                tail = ["ingress"] if key == "ingress" else []
                raw.setdefault(key, {})[dev] = runner(
                    ["tc", "-j"] + what + ["show", "dev", dev] + tail
                )
    except vnet_core.ModuleError:
        return dict.fromkeys(sources)
    return {name: s.parse(raw) for name, s in sources.items()}


def _kinds_by_device(output):
    kinds = {}
    for qdisc in vnet_facts.parse_json(output):
        kind = qdisc.get("kind")
        if kind == "htb" and qdisc.get("root"):
            kind = "htb-root"
        kinds.setdefault(qdisc.get("dev"), set()).add(kind)
    return kinds


def parse(raw):
    """The outputs gather() collected, as the `tc` fact (pure)."""
    qdiscs = {}
    for qdisc in vnet_facts.parse_json(raw["qdiscs"]):
        keep = {k: qdisc.get(k) for k in ("kind", "handle", "parent", "options")}
        keep["root"] = bool(qdisc.get("root"))
        qdiscs.setdefault(qdisc.get("dev"), []).append(keep)
    return {
        "qdiscs": qdiscs,
        "classes": {d: parse_classes(t) for d, t in (raw.get("classes") or {}).items()},
        "filters": {d: parse_filters(t) for d, t in (raw.get("filters") or {}).items()},
        "ingress": {d: parse_filters(t) for d, t in (raw.get("ingress") or {}).items()},
    }


def parse_classes(output):
    """HTB classes (vnet_htb.parse_classes) as the `tc` fact has them."""
    return vnet_htb.parse_classes(output, loads)


# ---- filters ---------------------------------------------------------------------


def parse_filters(output):
    """Rules from `tc -j filter show`, one per filter (not the per-priority headers).
    A u32 filter prints one "match" key per key: the JSON is read keeping them all."""
    if not output.strip():
        return []
    items = loads(output, _SCAN_MATCHES)
    return [rule for rule in map(_rule, items) if rule is not None]


def _keep_matches(pairs):
    out = {k: v for k, v in pairs if k != "match"}
    matches = [v for k, v in pairs if k == "match"]
    return dict(out, matches=matches) if matches else out


_SCAN = _json.make_scanner(_Reader())
# u32 prints one "match" key per key, in one object: kept, all of them
_SCAN_MATCHES = _json.make_scanner(_Reader(_keep_matches))


def _rule(item):
    options = item.get("options") or {}
    kind = item.get("kind")
    if not options or kind == "u32" and not options.get("matches") and "flowid" not in options:
        return None  # the priority's header line, or its hash table: not a filter
    rule = {"pref": item.get("pref"), "proto": (item.get("protocol") or "all").lower()}
    target = options.get("flowid") or options.get("classid")
    if target:
        rule["flowid"] = target
    redirect = [a.get("to_dev") for a in options.get("actions") or []
                if a.get("kind") == "mirred" and a.get("mirred_action") == "redirect"]  # fmt: skip
    if redirect:
        rule["redirect"] = redirect[0]
    if kind == "u32":
        keys = [(int(m["value"], 16), int(m["mask"], 16), int(m["off"]), m.get("offmask") or "")
                for m in options.get("matches", [])]  # fmt: skip
        fields = decode_u32(rule["proto"], keys)
        if fields is None or redirect:
            rule["keys"] = [k[:3] for k in keys if k[1]]
        else:
            rule["fields"] = fields
    elif kind == "flower" and set(options.get("keys") or {}) == {"vlan_id"}:
        rule["vlan"] = int(options["keys"]["vlan_id"])
    elif kind == "bpf" and vlan_of_program(options.get("bytecode")) is not None:
        rule.update(vlan=vlan_of_program(options["bytecode"]), classifier="bpf")
    elif kind == "fw" and isinstance(options.get("fw", options.get("handle")), dict):
        mark = options.get("fw", options.get("handle")).get("mark")  # renamed "fw" in 2024
        rule["fwmark"] = mark if isinstance(mark, int) else int(str(mark), 16)
    else:
        rule["kind"] = kind
    return rule


def decode_u32(proto, keys):
    """The header fields u32 `keys` [(value, mask, offset, offmask)] match on `proto`
    (ip or ipv6), or None when a key is one no field covers."""
    layout = LAYOUT.get(proto)
    if layout is None or any(k[3] for k in keys):
        return None
    value, mask = {}, {}
    for val, msk, off, _ in keys:
        for i in range(4):
            shift = 24 - 8 * i
            if (msk >> shift) & 0xFF:
                value[off + i] = (val >> shift) & 0xFF
                mask[off + i] = (msk >> shift) & 0xFF
    fields, used = {}, set()

    def take(offset, width):
        used.update(range(offset, offset + width))
        shifts = [(offset + i, 8 * (width - 1 - i)) for i in range(width)]
        return tuple(sum(b.get(at, 0) << n for at, n in shifts) for b in (value, mask))

    if proto == "ip" and 1 in mask:
        val, msk = take(1, 1)
        fields["dscp"] = val >> 2 if msk == 0xFC else None
    if proto == "ipv6" and (0 in mask or 1 in mask):
        val, msk = take(0, 2)
        fields["dscp"] = (val >> 6) & 0x3F if msk == 0x0FC0 else None
    if layout["protocol"] in mask:
        val, msk = take(layout["protocol"], 1)
        fields["protocol"] = val if msk == 0xFF else None
    for name in ("src", "dst"):
        offset, width = layout[name]
        if any(offset + i in mask for i in range(width)):
            fields[name] = _network(*take(offset, width), width)
    for name in ("sport", "dport"):
        if layout[name] in mask or layout[name] + 1 in mask:
            fields[name] = _block(*take(layout[name], 2))
    if set(mask) - used or None in fields.values():
        return None
    return fields


def _network(value, mask, width):
    prefix = bin(mask).count("1")
    if mask != ((1 << prefix) - 1) << (8 * width - prefix):
        return None
    import ipaddress  # noqa: PLC0415 (only for a filter on a network: ~1 ms)

    address = ipaddress.IPv4Address(value) if width == 4 else ipaddress.IPv6Address(value)
    return "%s/%d" % (address, prefix)


def _block(value, mask):
    size = 0x10000 - mask
    return (value, mask) if mask and size & (size - 1) == 0 and value & ~mask == 0 else None


def port_blocks(low, high):
    """Ports low..high as the fewest (value, mask) blocks u32 can match."""
    blocks = []
    while low <= high:
        size = low & -low if low else 0x10000
        while size > high - low + 1:
            size //= 2
        blocks.append((low, 0xFFFF & ~(size - 1)))
        low += size
    return blocks


# ---- a rule as text (state, drift) and as a command ---------------------------------

FIELD_ORDER = ("dscp", "protocol", "src", "dst", "sport", "dport")


def text(rule):
    """The rule as state and drift show it: "pref 12 ip protocol tcp dport 22"."""
    words = ["pref", str(rule["pref"]), rule["proto"]]
    if "fields" in rule:
        for name in FIELD_ORDER:
            if name in rule["fields"]:
                words += [name, _field_text(name, rule["fields"][name])]
    elif "vlan" in rule:
        words += ["vlan", str(rule["vlan"])] + (["bpf"] if rule.get("classifier") else [])
    elif "fwmark" in rule:
        words += ["fwmark", "0x%x" % rule["fwmark"]]
    elif "keys" in rule:
        words += ["u32"] + ["%08x/%08x@%d" % tuple(k) for k in rule["keys"]]
    else:
        words.append(rule.get("kind") or "unknown")
    if "redirect" in rule:
        words += ["redirect", rule["redirect"]]
    for word in words:  # from_text() splits on blanks: a value must stay one word
        problem = vnet_core.token_problem(word)
        if problem is not None:
            raise vnet_core.ModuleError("refusing a tc filter: %s" % problem)
    return " ".join(words)


def _field_text(name, value):
    if name == "protocol":
        return PROTOCOL_NAMES.get(value, str(value))
    if name in ("sport", "dport"):
        low, mask = value
        high = low + 0xFFFF - mask
        return str(low) if low == high else "%d-%d" % (low, high)
    return str(value)


def from_text(words):
    """text()'s words back as a rule (what a rollback re-creates)."""
    rule = {"pref": int(words[1]), "proto": words[2]}
    rest = words[3:]
    if "redirect" in rest:
        rule["redirect"] = rest[rest.index("redirect") + 1]
        rest = rest[: rest.index("redirect")]
    if rest[:1] == ["vlan"]:
        rule["vlan"] = int(rest[1])
        if rest[2:3] == ["bpf"]:
            rule["classifier"] = "bpf"
    elif rest[:1] == ["fwmark"]:
        rule["fwmark"] = int(rest[1], 16)
    elif rest[:1] == ["u32"]:
        rule["keys"] = [_raw_key(word) for word in rest[1:]]
    elif rest and rest[0] not in FIELD_ORDER:
        rule["kind"] = rest[0]
    else:
        rule["fields"] = {n: _field_value(n, v) for n, v in zip(rest[::2], rest[1::2])}
    return rule


def _raw_key(word):
    keys, off = word.split("@")
    value, mask = keys.split("/")
    return (int(value, 16), int(mask, 16), int(off))


def _field_value(name, value):
    if name == "dscp":
        return int(value)
    if name == "protocol":
        return PROTOCOLS.get(value) or int(value)
    if name in ("sport", "dport"):
        low, _, high = value.partition("-")
        return port_blocks(int(low), int(high or low))[0]
    return value


def command(dev, parent, rule):
    """The tokens of `tc filter add` for `rule` on `dev` at `parent` (1: or ingress);
    None for a classifier this module cannot write."""
    where = ["filter", "add", "dev", dev] + (
        ["ingress"] if parent == "ingress" else ["parent", parent]
    )
    head = where + ["protocol", rule["proto"], "pref", rule["pref"]]
    target = ["classid", rule["flowid"]] if "flowid" in rule else []
    if "vlan" in rule and rule.get("classifier") == "bpf":
        return head + ["bpf", "bytecode", vlan_program(rule["vlan"])] + target
    if "vlan" in rule:
        return head + ["flower", "vlan_id", rule["vlan"]] + target
    if "fwmark" in rule:
        return head + ["handle", "0x%x" % rule["fwmark"], "fw"] + target
    if "fields" in rule:
        matches = _u32_matches(rule["proto"], rule["fields"])
    elif "keys" in rule:
        matches = [
            t
            for v, m, o in rule["keys"]
            for t in ("match", "u32", "0x%08x" % v, "0x%08x" % m, "at", o)
        ]
    else:
        return None
    matches = matches or ["match", "u32", "0", "0"]
    if "redirect" in rule:
        target = ["action", "mirred", "egress", "redirect", "dev", rule["redirect"]]
    return head + ["u32"] + matches + target


# A classic BPF program for cls_bpf where the kernel has no flower: the VLAN id of the
# tag the kernel keeps beside the packet (a received tag is always moved there; a VLAN
# device's too where the NIC inserts tags), else of the tag in the frame itself (what
# Open vSwitch's userspace datapath sends through an AF_PACKET socket: the qdisc sees
# the frame from its Ethernet header, the 802.1Q tag at byte 12). Ancillary loads
# (linux/filter.h): SKF_AD_OFF -0x1000, VLAN_TAG_PRESENT 48, VLAN_TAG 44. Returns 0 (no
# match) or -1 (the classid).
VLAN_PROGRAM = ((0x20, 0, 0, 0xFFFFF030), (0x15, 2, 0, 0), (0x20, 0, 0, 0xFFFFF02C),
                (0x05, 0, 0, 3), (0x28, 0, 0, 12), (0x15, 0, 3, 0x8100), (0x28, 0, 0, 14),
                (0x54, 0, 0, 0x0FFF), (0x15, 1, 0, None), (0x06, 0, 0, 0),
                (0x06, 0, 0, 0xFFFFFFFF))  # fmt: skip
VID_AT = 8  # the instruction that compares with the VLAN id


def vlan_program(vid):
    """The program as tc's `bytecode` reads it, one word: "+" separates an instruction's
    numbers (its sscanf reads a signed number after no blank)."""
    insns = [(c, jt, jf, vid if k is None else k) for c, jt, jf, k in VLAN_PROGRAM]
    return ",".join([str(len(insns))] + ["%d+%d+%d+%d" % i for i in insns])


def vlan_of_program(bytecode):
    """The VLAN id a cls_bpf program tc printed (`bytecode` {"insns": [...]}) matches,
    when it is vlan_program()'s; else None."""
    insns = [(i.get("code"), i.get("jt"), i.get("jf"), i.get("k"))
             for i in (bytecode or {}).get("insns") or []]  # fmt: skip
    if len(insns) != len(VLAN_PROGRAM):
        return None
    vid = insns[VID_AT][3]
    ok = all(a == (b[:3] + (vid if b[3] is None else b[3],)) for a, b in zip(insns, VLAN_PROGRAM))
    return vid if ok and isinstance(vid, int) and 0 <= vid <= 4095 else None


def _u32_matches(proto, fields):
    family = "ip" if proto == "ip" else "ip6"
    out = []
    if "dscp" in fields:
        what = "dsfield" if family == "ip" else "priority"
        out += ["match", family, what, "0x%02x" % (fields["dscp"] << 2), "0xfc"]
    if "protocol" in fields:
        out += ["match", family, "protocol", fields["protocol"], "0xff"]
    for name in ("src", "dst"):
        if name in fields:
            out += ["match", family, name, fields[name]]
    for name in ("sport", "dport"):
        if name in fields:
            value, mask = fields[name]
            out += ["match", family, name, value, "0x%04x" % mask]
    return out
