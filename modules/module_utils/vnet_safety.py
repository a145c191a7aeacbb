"""The host's own way in: the management path, and the planned steps that touch it.

The management path is the interface holding the address the controller's SSH session
arrived on, everything below it (bridge and bond ports, the parent of a VLAN, an Open
vSwitch bridge's ports and bond members: the host's model, vnet_hostnet) and the device
it is a port of. A step touches the path when its tool's writer (vnet_registry) says so:
it sets one of those down, deletes it, moves it into or out of a bridge or bond, lowers
its MTU, changes its VLANs, its traffic control or its settings (sysctl), puts port
security (nftables or OpenFlow rules) on it; or when the steps together leave the
host without the management address, without the controller on-link, or without a
route to it (vnet_reach replays them: a prefix change to /32 is one). Some of those cut
the host off for sure (`CUTS`): vnetctl refuses them unless the play runs under a
rollback timer (commit confirmed). The others are applied under the timer by themselves,
armed just before.

Routes: a task's `ip route` steps that change the route the host takes to the
controller's own address are named too (vnet_fib.path_changes): a removed route (or one
that drops the traffic) cuts, a changed one runs under the timer.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_fib, vnet_reach, vnet_registry
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_fib
    import vnet_reach
    import vnet_registry

# effects that certainly cut the management path: refused without a rollback timer; those
# a step's writer names (vnet_registry), and those of the steps together
CUTS = vnet_registry.CUTS_NAMED + (
    "last port released",
    "controller no longer on-link",
    "no route to the controller",
)


def management_path(facts, server_ip, client_ip=None):
    """{"address", "interface", "path", "client"} for the controller's address on this
    host (`client`: the controller's own, as the session shows it), or None when no
    interface holds it (e.g. reached through NAT). The path, read from the host's model
    (vnet_hostnet): the holder, everything below it, and its master; for an internal
    port of an Open vSwitch bridge, the bridge and everything below it too (its
    uplinks carry the port's traffic)."""
    net = facts.net
    holder = net.holder(server_ip)
    if holder is None:
        return None
    path = net.below(holder)
    device = net.device(holder)
    bridge = net.ovs_bridge(holder)
    path |= {up for up in (device and device.master, bridge) if up}
    if bridge is not None and bridge != holder:
        path |= net.below(bridge)
    return {"address": server_ip, "interface": holder, "path": sorted(path), "client": client_ip}


def classify(steps, mgmt, facts):
    """The steps that touch the management path: [{"step", "device", "effect", "cuts"}],
    each as its tool's writer names it (vnet_registry). A move into a bridge or bond is
    a cut unless the same steps give the new master the management address (the module
    migrates it), and the deletion of the interface that holds it unless they give it to
    a device below (a migration undone)."""
    if not mgmt:
        return []
    path, address = set(mgmt["path"]), mgmt["address"]
    readded = {_tokens(line)[-1] for tool, line in steps if _adds_address(tool, line, address)}
    moving = {}  # device -> the master that gets its address: a bond member is set down
    for tool, line in steps:  # to be enslaved, which is part of its move, not a cut
        words = _tokens(line)
        if tool == "ip" and words[:2] == ["link", "set"] and _after(words, "master") in readded:
            moving[_after(words, "dev")] = _after(words, "master")
    returned = sorted(readded & path - {mgmt["interface"]})
    mtu = {d: facts.net.device(d).mtu for d in path if facts.net.device(d) is not None}
    on_path = vnet_registry.Path(path, readded, moving, mtu.get, 6 if ":" in address else 4)
    effects = {}
    for index, step in enumerate(steps):
        effect = vnet_registry.effect(step, on_path)
        if effect is not None and effect[1] == "delete" and effect[0] == mgmt["interface"]:
            effect = (effect[0], "delete") if not returned else \
                (effect[0], "deleted, its addresses move to %s" % returned[0])  # fmt: skip
        if effect is not None:
            effects[index] = effect
    orphaned = _last_port_released(steps, mgmt, facts, readded)
    if orphaned is not None:
        effects[orphaned] = (effects[orphaned][0], "last port released")
    replayed = any(map(vnet_registry.replayed, steps))
    lost = vnet_reach.follow(steps, mgmt, facts) if replayed else None
    if lost is not None:  # what the steps leave of the way to the controller
        index, what = lost
        if index not in effects:
            effects[index] = (vnet_registry.device(steps[index]), what)
        elif effects[index][1] not in CUTS and what in CUTS:
            effects[index] = (effects[index][0], what)
    return [{"step": "%s %s" % steps[i], "device": device, "effect": what, "cuts": what in CUTS}
            for i, (device, what) in sorted(effects.items())]  # fmt: skip


def _last_port_released(steps, mgmt, facts, readded):
    """The step that releases the last port of the bridge or bond holding the management
    address, when the address stays on it (no port, no way out): its index, or None."""
    holder = mgmt["interface"]
    ports, last = set(facts.ports_of(holder)), None
    if not ports or readded - {holder}:
        return None
    for index, (tool, line) in enumerate(steps):
        words = _tokens(line)
        if tool != "ip" or words[:2] != ["link", "set"]:
            continue
        if "nomaster" in words and _after(words, "dev") in ports:
            ports.discard(_after(words, "dev"))
            last = index
        elif _after(words, "master") == holder:
            ports.add(_after(words, "dev"))
    return last if not ports else None


def _tokens(line):
    return line.split()


def _adds_address(tool, line, address):
    words = _tokens(line)
    return (
        tool == "ip" and words[:2] in (["addr", "add"], ["address", "add"])
        and words[2].split("/")[0] == address and "dev" in words
    )  # fmt: skip


_after = vnet_registry.after


def describe(found):
    return "; ".join("%s: %s (%s)" % (f["device"], f["effect"], f["step"]) for f in found)


REFUSED = "refused before any change"
# what vnet_reach says of the route to the controller (vnet_fib.path_changes says more)
ROUTE_EFFECTS = ("route to the controller changed", "no route to the controller")


class Guard:
    """What the engine consults before it runs a task's steps (vnet_host.execute):
    `classify` names the steps that touch the management path; `allow` refuses those
    that cut it unless a rollback timer was asked for (`explicit`), and otherwise calls
    `arm` (which starts the timer) before they run. `refusal` says why a real run would
    refuse them: check mode reports that as the real run would (vnetctl's real runs can
    always arm; without `arm` and outside check mode, touching the path is refused).
    `client_ip`: the controller's address as the host's SSH session saw it."""

    def __init__(self, server_ip, arm=None, explicit=False, error=Exception, client_ip=None,
                 check=False):  # fmt: skip
        self.server_ip, self.arm, self.explicit, self.error = server_ip, arm, explicit, error
        self.client_ip, self.check = client_ip, check

    def classify(self, steps, facts):
        """The path's devices and addresses (classify, vnet_reach), and the route the
        host takes to the controller: where the steps write routes, vnet_fib.path_changes
        judges that route (in its own words, before -> after; it knows route types,
        metrics and both families), else vnet_reach (a gateway no longer on-link)."""
        found = []
        if self.server_ip:
            mgmt = management_path(facts, self.server_ip, self.client_ip)
            found = classify(steps, mgmt, facts)
        if any(tool == "ip" and line.split(" ", 1)[0] == "route" for tool, line in steps):
            found = [f for f in found if f["effect"] not in ROUTE_EFFECTS]
        return found + vnet_fib.path_changes(steps, self.client_ip, facts)

    def refusal(self, found):
        """Why `found` may not run, or None."""
        cuts = [f for f in found if f["cuts"]]
        if cuts and not self.explicit:
            return (
                "%s: it would cut this host off the path vnetctl reaches it by (%s); to "
                "apply it anyway under a rollback timer, run with --confirm-timeout (or "
                "set the play's confirm_timeout)" % (REFUSED, describe(cuts))
            )
        if self.arm is None and not self.check:
            return "%s: it touches the management path (%s) and no rollback timer can be " \
                "armed here" % (REFUSED, describe(found))  # fmt: skip
        return None

    def allow(self, found):
        problem = self.refusal(found)
        if problem is not None:
            raise self.error(problem)
        if not self.check:
            self.arm()


def preflight(host, modules, tasks, facts, guard):
    """Before the first change: every task planned on the facts as they are now, the
    steps that would cut the management path without a rollback timer named. Returns
    (task index, reason, the steps that touch the path) for the first such task, or
    None. Tasks that cannot be planned yet (they depend on an earlier task) are left to
    the engine's own check."""
    for task in tasks:
        module = modules[task["module"]]
        if hasattr(module, "run") or not hasattr(module, "read"):
            continue  # not a resource (facts, overlay_probe): no steps to plan
        try:
            steps = host.plan(module, task["args"], facts)["steps"]
        except Exception:  # noqa: BLE001 -- the task itself reports it when it runs
            continue  # it fails then, or it depends on an earlier task
        found = guard.classify(steps, facts)
        problem = guard.refusal(found) if found else None
        if problem is not None:
            return task["index"], problem, found
    return None
