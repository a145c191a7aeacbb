"""Addresses and routes that move with an interface.

When an interface that holds the host's addresses becomes a port of a bridge (or a
member of a bond), traffic arriving on it goes to its new master: the addresses, and
the routes through the interface, must move to the master in the same batch, or the
host is cut off; undoing that gives them back the same way. State is per device:
{"addresses": ["a/len", ...], "routes": [TEXT, ...]} (global addresses of both families;
every route through the device that the kernel did not make, in every table, of both
families, as vnet_fib writes them: "default via 10.0.0.1", "10.9.0.0/16 via 10.0.0.1
metric 100 table 100"; connected routes come and go with the addresses), plus
"promote_secondaries" (bool) for a device with IPv4 addresses: a rollback target only,
nothing declares it.

Renumbering inside a subnet adds the new address (a secondary) before the old one (the
primary) goes; with the kernel's default promote_secondaries=0, deleting a primary
deletes every secondary of its subnet too. Such a removal therefore runs with
promote_secondaries on for the device, set back afterwards.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_fib
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_fib

PROMOTE = "net/ipv4/conf/%s/promote_secondaries"  # a sysctl key, in its "/" form


def _flag(output):
    return output.strip() == "1"


# what a module that moves addresses declares in its FACTS
ROUTES = dict(
    vnet_fib.ROUTES,
    promote_secondaries=vnet_facts.per_device(
        ["cat", "/proc/sys/" + PROMOTE % "{dev}"], parse=_flag
    ),
)
EMPTY = {"addresses": (), "routes": ()}  # read only


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
    return vnet_fib.through(facts, device)


def holds_addresses(facts, device):
    return bool(addresses(facts, device))


def holders(facts):
    """Every device that holds a global address (only those have routes to move)."""
    names = {e.get("ifname") for e in facts.addrs if addresses(facts, e.get("ifname"))}
    return {n for n in names if n and facts.link(n) is not None}


def state(facts, devices):
    """{device: {"addresses", "routes"[, "promote_secondaries"]}} for `devices` that
    exist and every device that holds an address or a route (see holders): addresses
    that leave `devices` are still seen where they went."""
    out = {}
    for device in sorted({d for d in devices if facts.link(d) is not None} | holders(facts)):
        held = addresses(facts, device)
        entry = {"addresses": held, "routes": routes(facts, device) if held else []}
        if any(":" not in cidr for cidr in held):
            entry["promote_secondaries"] = facts.get("promote_secondaries", device)
        out[device] = entry
    return out


def moved(current, sources, target, declared=None):
    """The state after the addresses and routes of `sources` go to `target` (ports
    joining a master, or a master's back to its port); `declared` addresses, when
    given, replace the target's own. None are left on the sources."""
    want = {d: {"addresses": list(s["addresses"]), "routes": list(s["routes"])}
            for d, s in current.items()}  # fmt: skip
    into = want.setdefault(target, {"addresses": [], "routes": []})
    for source in sources:
        held = want.get(source) or EMPTY
        into["addresses"] = sorted(set(into["addresses"]) | set(held["addresses"]))
        into["routes"] = sorted(set(into["routes"]) | set(held["routes"]))
        want[source] = {"addresses": [], "routes": []}
    if declared is not None:
        into["addresses"] = sorted(set(normalized(a) for a in declared))
    return want


def pruned(want, current):
    """`want` without the devices that hold nothing, now or after: a new bridge's empty
    entry is no change, and a port released empty is one state() no longer reports."""
    return {d: s for d, s in want.items() if _holds(s) or _holds(current.get(d))}


def _holds(entry):
    return bool(entry and (entry["addresses"] or entry["routes"]))


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
    (so the new master carries everything first), then the routes left behind deleted
    (but those a replace took over: same key), then addresses removed, secondaries
    before their primary (the kernel drops a device's IPv4 routes with its last address:
    they are gone by then), promote_secondaries on around a removal that would
    otherwise take a surviving address along. A device `desired` leaves out is not
    touched (e.g. a bridge being deleted)."""
    adds, replaces, deletes, promote, removals, settle = [], [], [], [], [], []
    taken = set()
    for device in sorted(desired):
        now, want = current.get(device) or EMPTY, desired[device]
        for cidr in sorted(set(want["addresses"]) - set(now["addresses"])):
            adds.append(vnet_core.step("ip", "addr", "add", cidr, "dev", device))
        for route in sorted(set(want["routes"]) - set(now["routes"])):
            replaces.append(vnet_core.step("ip", "route", "replace", *route.split(), "dev", device))
            taken.add(vnet_fib.key(route))
    for device in sorted(desired):
        now, want = current.get(device) or EMPTY, desired[device]
        deletes += [vnet_core.step("ip", "route", "del", *r.split(), "dev", device)
                    for r in sorted(set(now["routes"]) - set(want["routes"]))
                    if vnet_fib.key(r) not in taken]  # fmt: skip
        gone = _removal_order(facts, device, set(now["addresses"]) - set(want["addresses"]))
        removals += [vnet_core.step("ip", "addr", "del", c, "dev", device) for c in gone]
        was = now.get("promote_secondaries")
        final = want.get("promote_secondaries", was)
        if not was and _takes_survivors(facts, device, gone, want["addresses"]):
            promote.append(_promote(device, True))
            was = True
        if None not in (final, was) and final != was:  # unread: never changed by a step
            settle.append(_promote(device, final))
    return adds + replaces + deletes + promote + removals + settle


def _promote(device, on):
    return vnet_core.step("sysctl", "%s=%d" % (PROMOTE % device, 1 if on else 0))


def _primaries(facts, device):
    """The device's IPv4 primary addresses ("a/len"): the first of each subnet."""
    for entry in facts.addrs:
        if entry.get("ifname") == device:
            return {"%s/%s" % (a["local"], a["prefixlen"]) for a in entry.get("addr_info", [])
                    if a.get("family") == "inet" and not a.get("secondary")}  # fmt: skip
    return set()


def _removal_order(facts, device, gone):
    """Secondaries first: a primary's removal may take them along, and a second `del`
    of an address already gone fails the batch."""
    primaries = _primaries(facts, device) if gone else set()
    return sorted(gone, key=lambda cidr: (cidr in primaries, cidr))


def _takes_survivors(facts, device, gone, kept):
    """A primary in `gone` shares its subnet with an address that must stay (the kernel's
    secondaries: same network, same prefix length)."""
    import ipaddress  # noqa: PLC0415 (only where addresses go)

    removed = [ipaddress.ip_interface(c) for c in gone if c in _primaries(facts, device)]
    stays = [ipaddress.ip_interface(c) for c in kept if ":" not in c]
    return any(s.network == p.network for p in removed for s in stays)
