"""Whether the host still reaches the controller after a list of steps.

What the controller's session needs of the host's IP layer: the management address
held by some device, and the controller on-link (a prefix of the host's holds it) or,
when it is further away, a route to it through a gateway that is on-link. `follow`
replays the steps' `ip addr`, `ip route`, `ip link del` and `sysctl` lines over the
host's addresses and routes, as the kernel would: deleting a primary IPv4 address also
deletes the secondaries of its subnet (same network, same prefix length) unless
promote_secondaries is on for the device,
and a route whose gateway is no longer on-link is gone. A prefix change to /32 thus
loses the controller as surely as the address removed.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_fib, vnet_ip
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_fib
    import vnet_ip

PROMOTE_SUFFIX = "/promote_secondaries"


def _reach(table, client):
    """How the controller at `client` is reached: {"client", "via"} (via: None when it
    is on-link, else the gateway of the route the host uses for it), or None when that
    cannot be told (no client address, or no route known)."""
    try:
        address = table.ip.ip_address(client)
    except (TypeError, ValueError):
        return None
    if table.on_link(address):
        return {"client": client, "via": None}
    route = table.route_to(address)
    return {"client": client, "via": str(route[1])} if route else None


class Table:
    """The host's global addresses {device: [[interface, secondary]]} and gateway routes
    {destination: (network, gateway, device)}, changed step by step."""

    def __init__(self, facts):
        import ipaddress  # noqa: PLC0415 (only where steps touch addresses: ~5 ms)

        self.ip, self.facts, self.promote, self.deleted = ipaddress, facts, {}, set()
        self.addresses = {}
        for device in facts.net.addressed():
            self.addresses[device] = [
                [ipaddress.ip_interface(a["cidr"]), a["secondary"]]
                for a in facts.net.entries(device) if a["scope"] == "global"
            ]  # fmt: skip
        self.routes = {}
        for route in _routes(facts):
            if route.get("gateway") and route.get("dev"):
                self._route(route["dst"], route["gateway"], route["dev"])

    def _network(self, dst, family=4):
        if dst == "default":
            dst = "0.0.0.0/0" if family == 4 else "::/0"
        return self.ip.ip_network(dst, strict=False)

    def _route(self, dst, gateway, device):
        network = self._network(dst, 6 if ":" in gateway else 4)
        self.routes[str(network)] = (network, self.ip.ip_address(gateway), device)

    # ---- what the controller's session needs ----------------------------------------

    def holds(self, address):
        address = self.ip.ip_address(address)
        return any(i.ip == address for i, _ in self._live())

    def on_link(self, address):
        return any(address.version == i.version and address in i.network for i, _ in self._live())

    def route_to(self, address):
        """(network, gateway, device) of the longest prefix holding `address` whose
        gateway is on-link, or None."""
        fitting = [r for r in self.routes.values()
                   if r[0].version == address.version and address in r[0]
                   and r[2] not in self.deleted and self.on_link(r[1])]  # fmt: skip
        return max(fitting, key=lambda r: r[0].prefixlen, default=None)

    def _live(self):
        return [a for dev, held in self.addresses.items() if dev not in self.deleted for a in held]

    # ---- the steps -----------------------------------------------------------------

    def apply(self, tool, words):
        if tool == "sysctl" and words and words[0].partition("=")[0].endswith(PROMOTE_SUFFIX):
            key, _, value = words[0].partition("=")
            self.promote[key[len("net/ipv4/conf/") : -len(PROMOTE_SUFFIX)]] = value == "1"
        if tool != "ip" or len(words) < 3:
            return
        device = _after(words, "dev")
        if words[:2] in (["link", "del"], ["link", "delete"]) and device:
            self.deleted.add(device)
        elif words[0] in ("addr", "address") and device and words[1] in ("add", "del"):
            (self._add if words[1] == "add" else self._del)(device, words[2])
        elif words[0] == "route" and _after(words, "table") not in (None, "main", "254"):
            return  # another table: not the one the controller is reached by
        elif words[0] == "route" and words[1] in ("add", "replace", "change", "append"):
            if "via" in words and device:
                self._route(words[2], _after(words, "via"), device)
        elif words[0] == "route" and words[1] in ("del", "delete"):
            via = _after(words, "via") or ""
            self.routes.pop(str(self._network(words[2], 6 if ":" in via else 4)), None)

    def _add(self, device, cidr):
        new = self.ip.ip_interface(cidr)
        held = self.addresses.setdefault(device, [])
        self.deleted.discard(device)  # a device of that name made again
        same = [i for i, _ in held if i.version == 4 == new.version and i.network == new.network]
        held.append([new, bool(same)])

    def _del(self, device, cidr):
        gone = self.ip.ip_interface(cidr)
        held = self.addresses.get(device, [])
        entry = next((a for a in held if a[0] == gone), None)
        if entry is None:
            return
        held.remove(entry)
        if gone.version != 4 or entry[1]:
            return
        subnet = [a for a in held if a[0].version == 4 and a[0].network == gone.network]
        if not self._promotes(device):  # the kernel deletes them with their primary
            for item in subnet:
                held.remove(item)
        elif subnet:
            subnet[0][1] = False

    def _promotes(self, device):
        if device not in self.promote:
            try:
                self.promote[device] = bool(self.facts.get("promote_secondaries", device))
            except vnet_core.ModuleError:  # unknown: the kernel's default
                self.promote[device] = False
        return self.promote[device]


def _routes(facts):
    """The main table's routes (vnet_fib.record), the table the controller is reached by
    (policy rules are not read)."""
    try:
        facts.declare(vnet_ip.ROUTES)
        return [r for r in facts.net.routes() if r["table"] == vnet_fib.MAIN]
    except vnet_core.ModuleError:  # recorded facts without routes
        return []


def _after(words, keyword):
    return words[words.index(keyword) + 1] if keyword in words[:-1] else None


def follow(steps, mgmt, facts):
    """Replay `steps`; returns (index of the step after which the controller is lost
    for good, why) or (index of the step that changed the route to it, "route to the
    controller changed"), or None. `mgmt`: see vnet_safety.management_path."""
    table = Table(facts)
    reach = _reach(table, mgmt.get("client"))
    first = _route_of(table, reach)
    lost, changed = None, None
    for index, (tool, line) in enumerate(steps):
        before = _problem(table, mgmt["address"], reach)
        table.apply(tool, line.split())
        now = _problem(table, mgmt["address"], reach)
        if now and not before:
            lost = (index, now)
        elif not now:
            lost = None
            if _route_of(table, reach) != first:
                changed = (index, "route to the controller changed")
    if _problem(table, mgmt["address"], reach):
        return lost
    return changed if changed and _route_of(table, reach) != first else None


def _problem(table, address, reach):
    if not table.holds(address):
        return "address removed"
    if reach is None:
        return None
    client = table.ip.ip_address(reach["client"])
    if reach["via"] is None:
        return None if table.on_link(client) else "controller no longer on-link"
    return None if table.route_to(client) else "no route to the controller"


def _route_of(table, reach):
    if reach is None or reach["via"] is None:
        return None
    route = table.route_to(table.ip.ip_address(reach["client"]))
    return route and (str(route[1]), route[2])
