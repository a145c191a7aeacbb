"""Addresses and routes that move with an interface.

When an interface that holds the host's addresses becomes a port of a bridge (or a
member of a bond, or a port of an OVS bridge), traffic arriving on it goes to its new
master: the addresses, and the routes through the interface, must move to the master in
the same batch, or the host is cut off; undoing that gives them back the same way. This
is the one migration linux_bridge, bond and ovs_bridge share (state, moved, phases; bond
and ovs_bridge keep the addresses and routes as two fields: split, joined), read from
the host's model (vnet_hostnet). State is per device:
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
    """The device's global addresses ("a/len"), sorted (the host's model: vnet_hostnet)."""
    return facts.net.addresses(device)


def routes(facts, device):
    """The movable routes through the device, in every table (TEXT form, vnet_fib)."""
    return facts.net.through(device)


def holds_addresses(facts, device):
    return bool(addresses(facts, device))


def holders(facts):
    """Every device that holds a global address (only those have routes to move)."""
    return facts.net.holders()


def state(facts, devices, elsewhere=True):
    """{device: {"addresses", "routes"[, "promote_secondaries"]}} for `devices` that
    exist and, with `elsewhere`, every device that holds an address or a route (see
    holders): addresses that leave `devices` are still seen where they went."""
    out = {}
    found = {d for d in devices if facts.link(d) is not None} | (holders(facts) if elsewhere
                                                                  else set())  # fmt: skip
    for device in sorted(found):
        held = addresses(facts, device)
        entry = {"addresses": held, "routes": routes(facts, device) if held else []}
        if elsewhere and any(":" not in cidr for cidr in held):
            entry["promote_secondaries"] = facts.get("promote_secondaries", device)
        out[device] = entry
    return out


def split(ip_state):
    """A state in the form bond and ovs_bridge keep (their fields are drift's): the
    addresses and the routes, each {device: [...]}."""
    return ({d: list(s["addresses"]) for d, s in ip_state.items()},
            {d: list(s["routes"]) for d, s in ip_state.items()})  # fmt: skip


def joined(addresses_of, routes_of):
    """split()'s two tables as one state (devices of either)."""
    return {d: {"addresses": list(addresses_of.get(d) or []), "routes": list(routes_of.get(d)
                                                                             or [])}
            for d in sorted(set(addresses_of) | set(routes_of))}  # fmt: skip


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


def steps(current, desired, facts, dropped=()):
    """From `current` to `desired` (see state()), in the order phases() gives."""
    order = phases(current, desired, facts, dropped)
    return order["add"] + order["route"] + order["remove"]


def phases(current, desired, facts, dropped=()):
    """The steps from `current` to `desired` in three phases, each to run after the one
    before: "add" (addresses added), "route" (routes replaced: the device that takes
    them holds their gateway's network by then), "remove" (the routes left behind
    deleted, but those a replace took over: same key; then addresses removed,
    secondaries before their primary -- the kernel drops a device's IPv4 routes with its
    last address: they are gone by then --, promote_secondaries on around a removal that
    would otherwise take a surviving address along). A module may run other steps
    between them (a bond enslaves its members after "add"). `dropped`: devices the
    module's own steps set down, whose routes the kernel drops: replaced even if
    unchanged. A device `desired` leaves out is not touched (e.g. a bridge being
    deleted)."""
    adds, replaces, deletes, promote, removals, settle = [], [], [], [], [], []
    taken = set()
    for device in sorted(desired):
        now, want = current.get(device) or EMPTY, desired[device]
        for cidr in sorted(set(want["addresses"]) - set(now["addresses"])):
            adds.append(vnet_core.step("ip", "addr", "add", cidr, "dev", device))
        had = set() if device in dropped else set(now["routes"])
        for route in sorted(set(want["routes"]) - had):
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
    return {"add": adds, "route": replaces, "remove": deletes + promote + removals + settle}


def _promote(device, on):
    return vnet_core.step("sysctl", "%s=%d" % (PROMOTE % device, 1 if on else 0))


def _primaries(facts, device):
    """The device's IPv4 primary addresses ("a/len"): the first of each subnet."""
    return {a["cidr"] for a in facts.net.entries(device) if a["family"] == 4
            and not a["secondary"]}  # fmt: skip


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
