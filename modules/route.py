#!/usr/bin/python3
# WANT_JSON
"""A static route, IPv4 or IPv6: a destination (`default`, a network, an address) in a
routing table (main unless declared: an id, or a name of the host's rt_tables) through a
gateway or a device or both, with a metric; present or absent. One `ip route replace`
makes or changes it in place (the kernel swaps it atomically), `ip route del` removes it.

A route is named as the kernel names it: by its table, destination and metric (unset: the
kernel's default, 0 for IPv4 and 1024 for IPv6). Two tasks with different metrics are
two routes (a primary and a backup gateway); a task whose metric changes leaves the route
with the old metric behind (declare that one `state: absent`).

`dev` unset: the device holding an address in the gateway's network, as the host has it
when the task runs (a route follows the management address into a bridge), or the one
the route already uses. The management-path guard (vnet_safety, vnet_fib.path_changes)
sees what a task does to the route the host takes to the controller: removed, it is a
cut; changed, the task runs under the rollback timer.
"""

import ipaddress
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_fib
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_fib
    import vnet_host as host

RESOURCE = "route"
ARGUMENT_SPEC = {
    "dest": {"type": "ipdest", "required": True},  # default, 10.0.0.0/8, 2001:db8::/32
    "gateway": {"type": "ipaddr"},
    "dev": {"type": "ifname"},
    "table": {"type": "rtable", "default": "main"},  # 1..4294967294, main, or an rt_tables name
    "metric": {"type": "int", "range": [0, 4294967295]},
    "family": {"type": "str", "choices": ["ipv4", "ipv6"]},  # for `default` with no gateway
    "onlink": {"type": "bool", "default": False},  # the gateway is on the link, whatever it is
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}


def _rt_tables(output):
    """{name: id} of an rt_tables file ("100 mgmt" lines, ids in decimal or 0x hex)."""
    out = {}
    for line in output.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2:
            try:
                out[words[1]] = int(words[0], 0)
            except ValueError:
                continue
    return out


FACTS = dict(
    vnet_fib.ROUTES,  # iproute2 reads /etc first, then (6.5 on) the distribution's file
    rt_tables=host.command(["cat", "/etc/iproute2/rt_tables"], _rt_tables, optional=True),
    rt_tables_dist=host.command(
        ["cat", "/usr/share/iproute2/rt_tables"], _rt_tables, optional=True
    ),  # fmt: skip
)
FAMILIES = {"ipv4": 4, "ipv6": 6}


def resource_name(params):
    """How results and drift name the route: `default`, `::/0` (IPv6's default),
    `10.9.0.0/16 table 100 metric 50`."""
    name = str(params.get("dest"))
    if name == "default" and (params.get("family") == "ipv6"
                              or ":" in str(params.get("gateway") or "")):  # fmt: skip
        name = "::/0"
    if params.get("table") not in (None, "main", "254"):
        name += " table %s" % params["table"]
    return name + (" metric %s" % params["metric"] if params.get("metric") is not None else "")


def _family(params):
    """4 or 6, from the destination, the gateway or `family`; they must agree."""
    found = {vnet_fib.family_of(params["dest"]), vnet_fib.family_of(params.get("gateway")),
             FAMILIES.get(params.get("family"))} - {None}  # fmt: skip
    if len(found) > 1:
        raise host.ModuleError("route %s: its destination, gateway and family are not of one "
                               "IP version" % params["dest"])  # fmt: skip
    return found.pop() if found else 4


def _table(value, facts):
    text = str(value)
    if text.isdigit():
        return int(text)
    if text in vnet_fib.TABLES:
        return vnet_fib.TABLES[text]
    for source in ("rt_tables", "rt_tables_dist"):
        number = (facts.get(source) or {}).get(text)
        if number is not None:
            return number
    raise host.ModuleError("routing table %r is not named in this host's rt_tables "
                           "(/etc/iproute2/rt_tables): give its number" % text)  # fmt: skip


def _key(params, facts):
    family = _family(params)
    metric = params.get("metric")
    return (family, _table(params["table"], facts), vnet_fib.canonical(params["dest"], family),
            vnet_fib.DEFAULT_METRIC[family] if metric is None else metric)  # fmt: skip


def read(params, facts):
    """The route of the task's key: {dest, table, metric, state}, and while present its
    type, gateway, device and onlink flag (and `multipath` for one vnetctl leaves alone)."""
    key = _key(params, facts)
    current = {"dest": key[2], "table": key[1], "metric": key[3], "state": "absent"}
    for route in facts.net.routes():
        if vnet_fib.key(route) == key:
            current.update(state="present", type=route["type"], gateway=route["gateway"],
                           dev=route["dev"], onlink=route["onlink"])  # fmt: skip
            if not route["single"]:
                current["multipath"] = True
            break
    return current


def desired(params, current, facts):
    want = {k: current[k] for k in ("dest", "table", "metric")}
    if params["state"] == "absent":
        return dict(want, state="absent")
    if current.get("multipath"):
        raise host.ModuleError("route %s: the host has it with several next hops (multipath), "
                               "which this module does not manage" % current["dest"])  # fmt: skip
    gateway = params.get("gateway")
    if gateway is not None:
        gateway = str(ipaddress.ip_address(gateway))  # as the kernel prints it
    dev = params.get("dev") or _device(gateway, current, facts)
    link = facts.link(dev)
    if link is None:
        raise host.ModuleError("route %s: device %s does not exist on this host"
                               % (current["dest"], dev))  # fmt: skip
    if link.get("master"):  # what it receives is its master's: no reply would reach the host
        raise host.ModuleError("route %s: %s is a port of %s: route through the bridge or "
                               "bond" % (current["dest"], dev, link["master"]))  # fmt: skip
    return dict(want, state="present", type="unicast", gateway=gateway, dev=dev,
                onlink=params["onlink"])  # fmt: skip


def _device(gateway, current, facts):
    """The route's device when `dev` is not declared: the one it uses (same gateway),
    else the one holding an address in the gateway's network."""
    if gateway is None:
        raise host.ModuleError("route %s: give a gateway, or dev for a route through a "
                               "device alone" % current["dest"])  # fmt: skip
    same = current["state"] == "present" and current.get("gateway") == gateway
    if same and facts.link(current.get("dev")) is not None:
        return current["dev"]
    address = ipaddress.ip_address(gateway)
    if address.is_link_local:
        raise host.ModuleError("route %s: gateway %s is link-local: give dev"
                               % (current["dest"], gateway))  # fmt: skip
    holders = facts.net.on_link(address)
    if len(holders) != 1:
        where = "no device here has" if not holders else "%s all have" % ", ".join(holders)
        raise host.ModuleError("route %s: %s an address in the network of gateway %s: give "
                               "dev" % (current["dest"], where, gateway))  # fmt: skip
    return holders[0]


def _route(state, proto=None):
    return {"dst": state["dest"], "gateway": state.get("gateway"), "metric": state["metric"],
            "table": state["table"], "onlink": state.get("onlink"), "proto": proto}  # fmt: skip


def steps(current, desired, facts):
    if desired["state"] == "absent":
        if current["state"] != "present":
            return []
        return [host.step("ip", "route", "del", *vnet_fib.words(_route(current)), "dev",
                          current["dev"])]  # fmt: skip
    words = vnet_fib.words(_route(desired, "static"))
    return [host.step("ip", "route", "replace", *words, "dev", desired["dev"])]


def persist(params, desired, facts, units):
    """A [Route] section in the .network of the route's device (see vnet_persist)."""
    if desired["state"] == "present":
        units.network(desired["dev"], [("Route", vnet_fib.networkd(_route(desired, "static")))])


SNAPSHOT_ORDER = 90  # after everything that makes devices and gives them addresses


def snapshot(facts):
    """Every route the host was given (not the kernel's own), single-path, as declared."""
    out = []  # facts recorded without routes: none (host.snapshot)
    for route in facts.net.routes():
        if not vnet_fib.movable(route):
            continue
        params = {"dest": route["dst"], "dev": route["dev"]}
        if route["gateway"]:
            params["gateway"] = route["gateway"]
        if route["table"] != vnet_fib.MAIN:
            params["table"] = route["table"]
        if route["metric"] != vnet_fib.DEFAULT_METRIC[route["family"]]:
            params["metric"] = route["metric"]
        if route["onlink"]:
            params["onlink"] = True
        out.append(params)
    return sorted(out, key=lambda p: (str(p.get("table", "")), p["dest"], p.get("metric", 0)))


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
