"""Routes as the kernel's routing tables (its FIB) hold them, in the one form every module
shares: the routes through a device (they move with its addresses into a bridge or bond), their
`ip` words and networkd keys.

A route's TEXT is `DST [via GW] [src ADDR] [metric N] [proto P] [table T] [onlink]`, its
device left out (the device whose routes these are). DST is "default" (IPv4's), "::/0"
(IPv6's: an `ip -batch` line cannot say -6) or a network with its prefix length. Left out:
metric 0, proto boot (what `ip route` gives), table main (254). A route's KEY is what the
kernel tells routes apart by: (family, table, DST, metric); `ip route replace` of a route
with the key of another replaces it, on whichever device it was.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_facts
except ImportError:  # vnetctl's runner preloads every module_utils file
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


def through(facts, device):
    """The texts of the movable routes through `device`, in every table, sorted."""
    return sorted(text(r) for r in routes(facts) if r["dev"] == device and movable(r))


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
