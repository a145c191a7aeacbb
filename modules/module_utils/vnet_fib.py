"""Routes as the kernel's routing tables (its FIB) hold them, in the one form every module
shares: the routes through a device (they move with its addresses into a bridge or bond),
a route the `route` module declares, their `ip` words and networkd keys, the checks of
declared addresses, destinations and tables, and the route the host takes to an address
(the management-path guard compares it before and after a task's steps).

A route's TEXT is `DST [via GW] [src ADDR] [metric N] [proto P] [table T] [onlink]`, its
device left out (the device whose routes these are). DST is "default" (IPv4's), "::/0"
(IPv6's: an `ip -batch` line cannot say -6) or a network with its prefix length. Left out:
metric 0, proto boot (what `ip route` gives), table main (254). A route's KEY is what the
kernel tells routes apart by: (family, table, DST, metric); `ip route replace` of a route
with the key of another replaces it, on whichever device it was.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts

# every table, both families; numbers for tables, protocols and types (-N), so that a
# table named in the host's rt_tables reads as its number
ROUTES = {"routes": vnet_facts.command(["ip", "-j", "-N", "route", "show", "table", "all"])}
MAIN, LOCAL = 254, 255
TABLES = {"main": MAIN, "default": 253, "local": LOCAL}  # iproute2's own names
PROTOCOLS = {"2": "kernel", "3": "boot", "4": "static", "9": "ra", "16": "dhcp"}
TYPES = {"1": "unicast", "2": "local", "3": "broadcast", "4": "anycast", "5": "multicast",
         "6": "blackhole", "7": "unreachable", "8": "prohibit", "9": "throw"}  # fmt: skip
MADE_BY_THE_KERNEL = ("kernel", "ra")  # with an address, or learnt: never moved by hand
DEFAULT_METRIC = {4: 0, 6: 1024}  # what the kernel gives a route added without one
DEFAULTS = {4: "default", 6: "::/0"}


def _family(entry):
    text = "%s %s" % (entry.get("dst", ""), entry.get("gateway", ""))
    return 6 if ":" in text or "pref" in entry else 4  # RTA_PREF: IPv6 routes only


def destination(text, family):
    """The DST of a text from what `ip -j route` prints ("default", "10.1.2.3")."""
    if text == "default":
        return DEFAULTS[family]
    return text if "/" in text else "%s/%d" % (text, 32 if family == 4 else 128)


def record(entry):
    """One entry of `ip -j [-N] route show` as a route: {family, dst, table, metric,
    gateway, dev, src, proto, type, onlink, single, expires} (single: one next hop of
    its own family, the only routes vnetctl rewrites: not multipath, nor an IPv4 route
    via an IPv6 next hop; expires: learnt, it goes by itself)."""
    family = _family(entry)
    table = str(entry.get("table", MAIN))
    proto = str(entry.get("protocol", "boot"))
    kind = str(entry.get("type", "unicast"))
    return {
        "family": family,
        "dst": destination(entry.get("dst", "default"), family),
        "table": int(table) if table.isdigit() else TABLES.get(table, table),
        "metric": int(entry.get("metric") or 0),
        "gateway": entry.get("gateway"),
        "dev": entry.get("dev"),
        "src": entry.get("prefsrc"),
        "proto": PROTOCOLS.get(proto, proto),
        "type": TYPES.get(kind, kind),
        "onlink": "onlink" in (entry.get("flags") or []),
        "single": "nexthops" not in entry and "via" not in entry,
        "expires": "expires" in entry,
    }


def routes(facts):
    return [record(e) for e in facts.get("routes") or []]


def movable(route):
    """A route the host was given (by hand, a DHCP client, networkd, vnetctl): the ones a
    device's new master must take over. The kernel's own come with addresses."""
    return (
        route["single"] and route["type"] == "unicast" and route["table"] != LOCAL
        and route["proto"] not in MADE_BY_THE_KERNEL and not route["expires"]
    )  # fmt: skip


def words(route):
    """The words of a route (a record or parsed text), its device left out."""
    out = [route["dst"]]
    for key, word in (("gateway", "via"), ("src", "src"), ("metric", "metric"),
                      ("proto", "proto"), ("table", "table")):  # fmt: skip
        value = route.get(key)
        if value is not None and (key, value) not in (("metric", 0), ("proto", "boot"),
                                                      ("table", MAIN)):  # fmt: skip
            out += [word, str(value)]
    return out + (["onlink"] if route.get("onlink") else [])


def text(route):
    return " ".join(words(route))


NAMED = {"via": "gateway", "src": "src", "metric": "metric", "proto": "proto", "table": "table"}


def parse(route_text):
    """A TEXT as a route: {dst, family, gateway, src, metric, proto, table, onlink}."""
    items = route_text.split()
    out = {"dst": items[0], "metric": 0, "proto": "boot", "table": MAIN, "onlink": False}
    at = 1
    while at < len(items):
        if items[at] == "onlink":
            out["onlink"], at = True, at + 1
            continue
        out[NAMED[items[at]]], at = items[at + 1], at + 2
    out["metric"], out["table"] = int(out["metric"]), int(out["table"])
    out["family"] = 6 if ":" in out["dst"] + (out.get("gateway") or "") else 4
    return out


def key(route):
    """What the kernel tells routes apart by (a record, or a TEXT)."""
    route = parse(route) if isinstance(route, str) else route
    return (route["family"], route["table"], route["dst"], route["metric"])


def networkd(route):
    """A route (record or TEXT) as the keys of a networkd [Route] section: [(key, value)].
    Protocol only when neither boot nor static (networkd's own)."""
    route = parse(route) if isinstance(route, str) else route
    return [
        ("Destination", None if route["dst"] == "default" else route["dst"]),
        ("Gateway", route.get("gateway")),
        ("GatewayOnLink", True if route.get("onlink") else None),
        ("PreferredSource", route.get("src")),
        ("Metric", route["metric"] or None),
        ("Protocol", None if route.get("proto") in ("boot", "static") else route.get("proto")),
        ("Table", None if route["table"] == MAIN else route["table"]),
    ]


# ---- declared values (vnet_params' value types: checked on the controller too) ------


def _ip():
    import ipaddress  # noqa: PLC0415 (only where a route is declared: ~1 ms)

    return ipaddress


def gateway_problem(value):
    """Why `value` cannot be a next hop, or None: an IPv4 or IPv6 unicast address, no
    prefix length, no zone (`%eth0`: the route's dev says it)."""
    if "%" in value:
        return "an address with a zone (%) is not accepted: give the device as dev"
    try:
        address = _ip().ip_address(value)
    except ValueError:
        return "it is not an IPv4 or IPv6 address"
    if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
        return "it is not a unicast address"
    return None


def destination_problem(value):
    """Why `value` cannot be a route's destination, or None: `default`, or a network with
    its host bits zero (an address alone is a host route)."""
    if value == "default":
        return None
    if "%" in value:
        return "a destination has no zone (%)"
    try:
        network = _ip().ip_network(value, strict=False)
    except ValueError:
        return "it is not `default` or a network such as 10.0.0.0/8 or 2001:db8::/32"
    if str(network.network_address) != value.split("/")[0]:
        return "it has host bits set: did you mean %s?" % network
    return None


def table_problem(value):
    """Why `value` cannot be a routing table, or None: 1..4294967294 but 255 (the
    kernel's local table), `main`, `default`, or a name of the host's rt_tables."""
    if value.isdigit():
        number = int(value)
        if number == LOCAL:
            return "255 is the kernel's local table"
        return None if 0 < number < 2**32 - 1 else "a table id is 1..4294967294"
    if value == "local":
        return "local is the kernel's own table"
    if value in ("all", "unspec", "cache") or not value[:1].isalpha():
        return "it is not a table id (1..4294967294) or a table's name"
    bad = next((c for c in value if c not in vnet_core.IFNAME_CHARS), None)
    if bad is not None or len(value) > 64:
        return "a table's name is at most 64 ASCII letters, digits, '.', '_' or '-'"
    return None


# argument spec types (vnet_params): {"type": "ipaddr"} and the like
VALUE_TYPES = {
    "ipaddr": ("next hop", gateway_problem),
    "ipdest": ("route destination", destination_problem),
    "rtable": ("routing table", table_problem),
}


def canonical(dst, family):
    """A declared destination as the kernel prints it (TEXT form)."""
    if dst == "default":
        return DEFAULTS[family]
    network = _ip().ip_network(dst, strict=True)
    return destination(str(network), network.version)


def family_of(value):
    """4 or 6 for an address or network, None for `default`."""
    return None if value in (None, "default") else _ip().ip_network(value, strict=False).version


# ---- the route to an address (the management-path guard) --------------------------


def path_changes(steps, address, facts):
    """How `steps` change the route of the main table the host takes to `address` (the
    controller): [] when they do not; a change, or a removal (a cut: no route left, or
    one that drops the traffic), as the guard names steps. Policy rules are not read."""
    lines = [ln for tool, ln in steps if tool == "ip" and ln.split(" ", 1)[0] == "route"]
    if not address or not lines:
        return []
    ip = _ip()
    target = ip.ip_address(address)
    table = [r for r in facts.net.routes()  # the host's model: it declares ROUTES
             if r["family"] == target.version and r["table"] == MAIN]  # fmt: skip
    before = _lookup(table, target, ip)
    if before is None:
        return []  # no route now (a NAT, a tunnel): nothing to compare
    step = None
    for line in lines:
        try:
            table, changed = _apply(table, line.split(), target, ip)
        except ValueError:  # not a route line of the form vnetctl writes: left out
            continue
        step = step or (line if changed else None)
    after = _lookup(table, target, ip)
    if after == before:
        return []
    shown = "%s -> %s" % (_show(before), _show(after) if after else "none")
    cuts = after is None or after[0] != "unicast"
    effect = "route to the controller removed" if cuts else "route to the controller changed"
    return [{"step": "ip " + (step or lines[-1]), "device": before[2] or after and after[2],
             "effect": "%s (%s)" % (effect, shown), "cuts": cuts}]  # fmt: skip


def _show(found):
    kind, gateway, dev = found
    return " ".join(w for w in (kind if kind != "unicast" else "", "via " + gateway if gateway
                                else "", "dev %s" % dev if dev else "") if w)  # fmt: skip


def _lookup(table, target, ip):
    """(type, gateway, dev) of the longest match, lowest metric first."""
    best = None
    for route in table:
        network = _network(route["dst"], ip)
        if target in network and (best is None or
                                  (network.prefixlen, -route["metric"]) > best[0]):  # fmt: skip
            best = ((network.prefixlen, -route["metric"]), route)
    return None if best is None else (best[1]["type"], best[1]["gateway"], best[1]["dev"])


def _network(dst, ip):
    return ip.ip_network("0.0.0.0/0" if dst == "default" else dst, strict=False)


VERBS = {"add": "add", "append": "add", "prepend": "add", "replace": "replace",
         "change": "replace", "del": "del", "delete": "del"}  # fmt: skip
METRIC_WORDS = ("metric", "priority", "preference")


def _apply(table, words_, target, ip):
    """The main table of `target`'s family after one `route VERB ...` line (iproute2's
    words); and whether the line was about that table."""
    verb = VERBS.get(words_[1] if len(words_) > 1 else "")
    rest = words_[2:]
    kind = rest.pop(0) if rest and rest[0] in TYPES.values() else "unicast"
    if verb is None or not rest:
        return table, False
    fields, at = {}, 1
    while at < len(rest):
        word = rest[at]
        value = rest[at + 1] if at + 1 < len(rest) else None
        if value in ("inet", "inet6") and word == "via":
            value = rest[at + 2] if at + 2 < len(rest) else None
            at += 1
        fields["metric" if word in METRIC_WORDS else word] = value
        at += 1 if word == "onlink" else 2
    table_id = str(fields.get("table", MAIN))
    if TABLES.get(table_id, int(table_id) if table_id.isdigit() else None) != MAIN:
        return table, False
    dst = rest[0]
    if dst == "default":
        dst = DEFAULTS[target.version]
    elif "/" not in dst:
        dst = destination(dst, 6 if ":" in dst else 4)
    if _network(dst, ip).version != target.version:
        return table, False
    metric = int(fields.get("metric") or DEFAULT_METRIC[target.version])  # ValueError: not one
    new = {"dst": dst, "metric": metric, "type": kind, "gateway": fields.get("via"),
           "dev": fields.get("dev")}  # fmt: skip
    same = [r for r in table if (r["dst"], r["metric"]) == (dst, metric)]
    if verb == "del":
        gone = [r for r in same if all(fields.get(k) in (None, r[f]) for k, f in
                                       (("via", "gateway"), ("dev", "dev")))][:1]  # fmt: skip
        return [r for r in table if r not in gone], bool(gone)
    if verb == "replace":
        table = [r for r in table if r not in same]
    return table + [new], True
