"""The tc and ip steps from one shaping state to another (traffic_shaping's planner).

A state is what traffic_shaping.read() returns: the HTB policy of a device ("state",
"root", "rate", "ceil", "burst", "cburst", "sizing", "classes" {name: {id, reservation,
limit, shares (NIOC's words: vnet_tc_policy.nioc(); `rate` too where set by hand), prio,
burst, cburst, leaf, filters}},
"extra") and its "ingress" (the hook qdisc, its filters, the IFB device and the IFB's
own policy). Any earlier read() is a valid target (rollbacks). Order: filters that go,
classes that go, the root and the parent class, classes added or changed in place, leaf
qdiscs, then new filters; the root goes only when the state asks for none, or is not ours.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_tc, vnet_tc_guarantees
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_tc
    import vnet_tc_guarantees

NUMBERS = ("rate", "ceil", "prio", "quantum", "burst", "cburst")
PARENT = ("rate", "ceil", "burst", "cburst")
FIRST_PREF, MAX_FILTERS = 10, 500
PORT_PROTOCOLS = (6, 17, 132, 136)


class PolicyError(vnet_core.ModuleError):
    """A refusal naming the argument at fault (the controller shows its file:line)."""

    def __init__(self, message, argument="classes"):
        super().__init__(message)
        self.argument = argument


def needs(features, options, argument):
    missing = [o for o in options if features is not None and o not in features]
    if missing:
        raise PolicyError(
            "%s needs what this kernel lacks: %s"
            % (argument, ", ".join("CONFIG_" + o for o in missing)),
            argument,
        )


def step(*tokens):
    return vnet_core.step("tc", *tokens)


def kbit(mbits):
    return int(round(mbits * 1000))


def steps(current, desired, facts=None):
    """Every step from `current` to `desired` (states as traffic_shaping.read() returns):
    the module's steps(); `facts` are not needed, the states say it all."""
    dev = desired["name"]
    before, after = [], []
    out = policy_steps(dev, current, desired)
    if desired.get("ingress") is not None:
        ip_first, tc_steps, ip_last = ingress_steps(
            dev, current.get("ingress") or {}, desired["ingress"]
        )
        before, after = ip_first, ip_last
        out = (tc_steps + out) if desired["ingress"].get("state") == "absent" else out + tc_steps
    return before + out + after


def policy_steps(dev, cur, want):
    """tc steps taking `dev`'s HTB policy from `cur` to `want`."""
    present = cur.get("state") == "present"
    if want.get("state") != "present":
        return [step("qdisc", "del", "dev", dev, "root")] if present else []
    out = []
    rebuild = not present or cur.get("root") != want["root"]
    if rebuild:
        handle = (cur.get("root") or "").rpartition(" ")[2]
        if present or handle not in ("", "0:"):  # a root someone made: it goes first
            out.append(step("qdisc", "del", "dev", dev, "root"))
        default = want["root"].rpartition(" ")[2]
        out.append(
            step("qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", default)
        )
        cur = {}
    have_filters, want_filters = _filters(cur), _filters(want)
    dead = sorted({vnet_tc.from_text(t.split())["pref"] for t, f in have_filters - want_filters})
    out += [step("filter", "del", "dev", dev, "parent", "1:", "pref", p) for p in dead]
    have, wanted = _classes(cur), _classes(want)
    for cid in sorted(set(have) - set(wanted), key=_minor):
        out.append(step("class", "del", "dev", dev, "classid", cid))
    if rebuild or any(cur.get(k) != want.get(k) for k in PARENT):
        verb = "add" if rebuild or cur.get("rate") is None else "change"
        parent = dict({k: want.get(k) for k in PARENT}, parent="1:", quantum=1514)
        out.append(_class_step(dev, verb, "1:1", parent))
    for cid in sorted(wanted, key=_minor):
        new, old = wanted[cid], have.get(cid)
        if old is None or any(old.get(k) != new.get(k) for k in NUMBERS + ("parent",)):
            out.append(_class_step(dev, "add" if old is None else "change", cid, new))
        if old is None or old.get("leaf") != new.get("leaf"):
            if old is not None and old.get("leaf"):
                out.append(step("qdisc", "del", "dev", dev, "parent", cid))
            if new.get("leaf"):
                out.append(
                    step(
                        "qdisc",
                        "add",
                        "dev",
                        dev,
                        "parent",
                        cid,
                        "handle",
                        "%x:" % _minor(cid),
                        new["leaf"],
                    )
                )
    for text, flowid in sorted(
        want_filters, key=lambda tf: vnet_tc.from_text(tf[0].split())["pref"]
    ):
        rule = vnet_tc.from_text(text.split())
        if (text, flowid) in have_filters and rule["pref"] not in dead:
            continue
        if flowid:
            rule["flowid"] = flowid
        tokens = vnet_tc.command(dev, "1:", rule)
        if tokens is None:
            raise vnet_core.ModuleError("cannot re-create filter %s on %s" % (text, dev))
        out.append(step(*tokens))
    return out


in_tc_words, tc_numbers = vnet_tc_guarantees.in_tc_words, vnet_tc_guarantees.tc_numbers


def _minor(cid):
    return int(cid.partition(":")[2] or "0", 16)


def _classes(state):
    """{classid: {rate, ceil, prio, quantum, burst, cburst, leaf, parent}}: declared and
    extra classes in tc's words."""
    out, numbers = {}, tc_numbers(state)
    for name, info in (state.get("classes") or {}).items():
        out[info["id"]] = dict(info, parent="1:1", **numbers[name])
    for text in state.get("extra") or []:
        words = text.split()
        if words[0] == "class":
            found = dict(zip(words[2::2], words[3::2]))
            for key in NUMBERS:
                if key in found:
                    found[key] = float(found[key]) if key in ("rate", "ceil") else int(found[key])
            out[words[1]] = found
    return out


def _class_step(dev, verb, cid, info):
    tokens = [
        "class",
        verb,
        "dev",
        dev,
        "parent",
        info.get("parent") or "1:1",
        "classid",
        cid,
        "htb",
    ]
    for key in ("rate", "ceil"):
        if info.get(key) is not None:
            tokens += [key, vnet_tc.format_rate(kbit(info[key]))]
    for key in ("prio", "quantum", "burst", "cburst"):
        if info.get(key) is not None:
            tokens += [key, info[key]]
    return step(*tokens)


def _filters(state):
    """{(filter text, flowid)}: the filters of every declared class, and the extra ones."""
    out = set()
    for info in (state.get("classes") or {}).values():
        out |= {(text, info["id"]) for text in info.get("filters") or []}
    for text in state.get("extra") or []:
        words = text.split()
        if words[0] == "filter":
            flowid = words[words.index("flowid") + 1] if "flowid" in words else None
            rest = words[1 : words.index("flowid")] if flowid else words[1:]
            out.add((" ".join(rest), flowid))
    return out


def ingress_steps(dev, cur, want):
    """([ip steps first], [tc steps], [ip steps last]) for the ingress side: the IFB
    device, its policy, the hook qdisc and its filters (the redirect)."""
    first, out, last = [], [], []
    ifb = want.get("ifb") or cur.get("ifb")
    exists = cur.get("device") == "present"
    if want.get("device") == "present":
        if not exists:
            add = ["link", "add", "name", ifb, "txqueuelen", 1000, "type", "ifb"]
            first.append(vnet_core.step("ip", *add))
        if want.get("up") and not (exists and cur.get("up")):
            first.append(vnet_core.step("ip", "link", "set", "dev", ifb, "up"))
        out += policy_steps(
            ifb, cur.get("policy") or {} if exists else {}, want.get("policy") or {}
        )
    hook, have = cur.get("hook"), set(cur.get("filters") or [])
    if "hook" in want and want["hook"] != hook:
        if hook:
            out.append(step("qdisc", "del", "dev", dev, hook))
            have = set()
        if want["hook"]:
            handle = ["handle", "ffff:"] if want["hook"] == "ingress" else []
            out.append(step("qdisc", "add", "dev", dev, *handle, want["hook"]))
    wanted = set(want.get("filters", have))
    dead = sorted({vnet_tc.from_text(t.split())["pref"] for t in have - wanted})
    out += [step("filter", "del", "dev", dev, "ingress", "pref", p) for p in dead]
    for text in sorted(wanted):
        rule = vnet_tc.from_text(text.split())
        if text not in have or rule["pref"] in dead:
            tokens = vnet_tc.command(dev, "ingress", rule)
            if tokens is None:
                raise vnet_core.ModuleError(
                    "cannot re-create ingress filter %s on %s" % (text, dev)
                )
            out.append(step(*tokens))
    if want.get("device") == "absent" and exists:
        last.append(vnet_core.step("ip", "link", "del", "dev", ifb))
    return first, out, last


# ---- the kernel's tc features and the links' speeds ---------------------------------

KERNEL_CONFIG = (
    "{ zcat /proc/config.gz || cat /boot/config-$(uname -r); } 2>/dev/null"
    " | grep -E '^CONFIG_(NET_SCH_|NET_CLS_|NET_ACT_|IFB)'"
)
LINK_SPEEDS = "grep -s -H . /sys/class/net/*/speed || true"


def parse_kernel_config(output):
    """{"NET_SCH_FQ_CODEL": "y", ...}: what the running kernel was built with."""
    out = {}
    for row in output.splitlines():
        key, _, value = row.partition("=")
        if key.startswith("CONFIG_") and value in ("y", "m"):
            out[key[len("CONFIG_") :]] = value
    return out


def parse_link_speeds(output):
    """{dev: Mbit/s} of the links whose driver reports a speed (/sys/class/net/D/speed)."""
    out = {}
    for row in output.splitlines():
        path, _, value = row.rpartition(":")
        parts = path.split("/")
        if len(parts) == 6 and value.strip().lstrip("-").isdigit() and int(value) > 0:
            out[parts[4]] = int(value)
    return out


# the sources traffic_shaping declares (FACTS): None where the command fails
KERNEL = vnet_facts.command(["sh", "-c", KERNEL_CONFIG], parse_kernel_config, optional=True)
SPEEDS = vnet_facts.command(["sh", "-c", LINK_SPEEDS], parse_link_speeds, optional=True)


# ---- matches: the classes' `match` as filter rules -----------------------------------


def rules(classes, features):
    """{class name: [rule]}, prefs in the order declared; a match that an earlier one
    always catches first can never hit: refused."""
    seen, out, pref = [], {}, FIRST_PREF
    for cls in classes:
        for index, match in enumerate(cls.get("match") or []):
            where = "class %s match %d" % (cls["name"], index + 1)
            for rule in _expand(match, where, features):
                for other, earlier in seen:
                    if _covers(earlier, rule):
                        raise PolicyError(
                            "%s can never hit: %s catches its traffic first" % (where, other)
                        )
                seen.append((where, rule))
                rule.update(pref=pref, flowid=None)
                out.setdefault(cls["name"], []).append(rule)
                pref += 1
    if pref - FIRST_PREF > MAX_FILTERS:
        raise PolicyError(
            "the matches need %d filters; at most %d" % (pref - FIRST_PREF, MAX_FILTERS)
        )
    return out


def _expand(match, where, features):
    fields = {k: v for k, v in match.items() if v is not None}
    if not fields:
        raise PolicyError("%s is empty: name what it matches" % where)
    for key, option in (("vlan", "NET_CLS_FLOWER"), ("fwmark", "NET_CLS_FW")):
        if key in fields:
            if len(fields) > 1:
                raise PolicyError("%s: %s matches alone (one filter of its own)" % (where, key))
            rule = {"proto": "802.1q" if key == "vlan" else "all", key: fields[key]}
            if key == "vlan" and features is not None and option not in features:
                option, rule["classifier"] = "NET_CLS_BPF", "bpf"  # no flower: a BPF program
            needs(features, [option], "%s (a %s match)" % (where, key))
            return [rule]
    needs(features, ["NET_CLS_U32"], where)
    families = {"ipv4": ["ip"], "ipv6": ["ipv6"]}.get(fields.get("family"), ["ip", "ipv6"])
    out = {}
    if "dscp" in fields:
        out["dscp"] = fields["dscp"]
    protocol = _protocol(fields.get("protocol"), where)
    if protocol is not None:
        out["protocol"] = protocol
        families = [f for f in families if (protocol, f) not in ((1, "ipv6"), (58, "ip"))]
    for key in ("src", "dst"):
        if key in fields:
            net = _network(fields[key], where, key)
            out[key] = str(net)
            families = [f for f in families if f == ("ip" if net.version == 4 else "ipv6")]
    if not families:
        raise PolicyError("%s can never hit: its fields belong to different IP versions" % where)
    ports = {}
    for key in ("sport", "dport"):
        if key in fields:
            if protocol not in PORT_PROTOCOLS:
                raise PolicyError("%s: %s needs protocol tcp, udp, sctp or udplite" % (where, key))
            ports[key] = _ports(fields[key], where, key)
    rules = []
    for family in families:
        for sport in ports.get("sport", [None]):
            for dport in ports.get("dport", [None]):
                fields_of = dict(
                    out, **{k: v for k, v in (("sport", sport), ("dport", dport)) if v}
                )
                rules.append({"proto": family, "fields": fields_of})
    return rules


def _protocol(value, where):
    if value is None:
        return None
    text = str(value).strip().lower()
    number = vnet_tc.PROTOCOLS.get(text, int(text) if text.isdigit() else None)
    if number is None or not 0 <= number <= 255:
        raise PolicyError(
            "%s: protocol %r is not %s or 0..255" % (where, value, "/".join(vnet_tc.PROTOCOLS))
        )
    return number


def _network(value, where, key):
    try:
        import ipaddress  # noqa: PLC0415 (only where a match names a network: ~1 ms)

        return vnet_core.ip_value(lambda text: ipaddress.ip_network(text, strict=False), value)
    except ValueError:
        raise PolicyError("%s: %s %r is not a network" % (where, key, value)) from None


def _ports(value, where, key):
    text = str(value).strip()
    low, _, high = text.partition("-")
    if not (low.isdigit() and (high or low).isdigit()) or isinstance(value, bool):
        raise PolicyError("%s: %s %r is not a port or a range low-high" % (where, key, value))
    low, high = int(low), int(high or low)
    if not 1 <= low <= high <= 65535:
        raise PolicyError("%s: %s %r is not within 1..65535, low first" % (where, key, value))
    return vnet_tc.port_blocks(low, high)


def _covers(a, b):
    """Whether every packet rule `b` matches, rule `a` matches too."""
    if a["proto"] != b["proto"] or set(a) - {"pref", "flowid"} != set(b) - {"pref", "flowid"}:
        return False
    if "fields" not in a:
        return a == b
    return all(k in b["fields"] and _within(k, v, b["fields"][k]) for k, v in a["fields"].items())


def _within(key, outer, inner):
    if key in ("src", "dst"):
        import ipaddress  # noqa: PLC0415

        return ipaddress.ip_network(inner).subnet_of(ipaddress.ip_network(outer))
    if key in ("sport", "dport"):
        return inner[1] & outer[1] == outer[1] and inner[0] & outer[1] == outer[0]
    return outer == inner
