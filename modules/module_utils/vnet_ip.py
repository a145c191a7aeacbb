"""Addresses and routes that move with an interface.

When an interface that holds the host's addresses becomes a port of a bridge (or a
member of a bond), traffic arriving on it goes to its new master: the addresses, and
the routes through the interface, must move to the master in the same batch, or the
host is cut off. State is per device: {"addresses": ["a/len", ...], "routes":
["DST via GW[ metric N]", ...]} (global addresses of both families; IPv4 routes of the
main table that have a gateway; connected routes come and go with the addresses).

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts

# what a module that moves addresses declares in its FACTS
ROUTES = {"routes": vnet_facts.command(["ip", "-j", "route", "show"])}


def addresses(facts, device):
    for entry in facts.addrs:
        if entry.get("ifname") == device:
            return sorted(
                "%s/%s" % (a["local"], a["prefixlen"])
                for a in entry.get("addr_info", [])
                if a.get("scope") == "global"
            )
    return []


def routes(facts, device):
    return sorted(
        _route(r) for r in facts.get("routes") or [] if r.get("dev") == device and "gateway" in r
    )


def _route(entry):
    text = "%s via %s" % (entry.get("dst", "default"), entry["gateway"])
    return text + (" metric %s" % entry["metric"] if entry.get("metric") else "")


def holds_addresses(facts, device):
    return bool(addresses(facts, device))


def state(facts, devices):
    """{device: {"addresses", "routes"}} for the devices that exist."""
    return {
        d: {"addresses": addresses(facts, d), "routes": routes(facts, d)}
        for d in devices
        if facts.link(d) is not None
    }


def moved(current, ports, master, declared=None):
    """The state after `ports` join `master`: their addresses and routes on the master
    (its `declared` addresses, when given, replace its own); none left on the ports."""
    want = {d: {"addresses": list(s["addresses"]), "routes": list(s["routes"])}
            for d, s in current.items()}  # fmt: skip
    target = want.setdefault(master, {"addresses": [], "routes": []})
    for port in ports:
        held = want.get(port) or {"addresses": [], "routes": []}
        target["addresses"] = sorted(set(target["addresses"]) | set(held["addresses"]))
        target["routes"] = sorted(set(target["routes"]) | set(held["routes"]))
        want[port] = {"addresses": [], "routes": []}
    if declared is not None:
        target["addresses"] = sorted(set(normalized(a) for a in declared))
    return want


def normalized(cidr):
    """'10.0.0.5/24' as the kernel shows it; ModuleError for anything else."""
    import ipaddress  # noqa: PLC0415 (only where an address is declared: ~1 ms)

    try:
        interface = vnet_core.ip_value(ipaddress.ip_interface, cidr)
    except ValueError:
        raise vnet_core.ModuleError(
            "address %r is not an address with a prefix length (e.g. 10.0.0.5/24)" % cidr
        ) from None
    if "/" not in str(cidr):
        raise vnet_core.ModuleError("address %r needs a prefix length (e.g. /24)" % cidr)
    return "%s/%d" % (interface.ip, interface.network.prefixlen)


def steps(current, desired, facts):
    """From `current` to `desired` (see state()): addresses added, then routes replaced
    (so the new master carries everything first), then addresses and routes removed. A
    device `desired` leaves out is not touched (e.g. a bridge being deleted)."""
    adds, replaces, removals = [], [], []
    for device in sorted(desired):
        now = current.get(device) or {"addresses": [], "routes": []}
        want = desired[device]
        for cidr in sorted(set(want["addresses"]) - set(now["addresses"])):
            adds.append(vnet_core.step("ip", "addr", "add", cidr, "dev", device))
        for route in sorted(set(want["routes"]) - set(now["routes"])):
            replaces.append(vnet_core.step("ip", "route", "replace", *route.split(), "dev", device))
        gone = sorted(set(now["addresses"]) - set(want["addresses"]))
        removals += [vnet_core.step("ip", "addr", "del", c, "dev", device) for c in gone]
        stale = set(now["routes"]) - set(want["routes"])
        if not gone:  # removing an address takes the routes through it along
            removals += [vnet_core.step("ip", "route", "del", *r.split(), "dev", device)
                         for r in sorted(stale)]  # fmt: skip
    return adds + replaces + removals
