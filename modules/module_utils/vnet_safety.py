"""The host's own way in: the management path, and the planned steps that touch it.

The management path is the interface holding the address the controller's SSH session
arrived on, everything below it (bridge and bond ports, the parent of a VLAN) and the
device it is a port of. A step touches the path when it sets one of those down, deletes
it, moves it into or out of a bridge or bond, lowers its MTU or removes the management
address. Some of those cut the host off for sure (`CUTS`): vnetctl refuses them unless
the play runs under a rollback timer (commit confirmed). The others are applied under
the timer by themselves, armed just before.

Routes: a task's `ip route` steps that change the route the host takes to the
controller's own address are named too (vnet_fib.path_changes): a removed route (or one
that drops the traffic) cuts, a changed one runs under the timer.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_fib
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_fib

MIN_SAFE_MTU = 576  # below it, IPv4 hosts are not required to accept datagrams (RFC 791)
PARENT_KINDS = ("vlan", "macvlan", "macvtap", "ipvlan")  # "link" names their lower device

# effects that certainly cut the management path: refused without a rollback timer
CUTS = ("down", "delete", "enslaved", "address removed", "mtu too low")


def management_path(facts, server_ip):
    """{"address", "interface", "path"} for the controller's address on this host, or
    None when no interface holds it (e.g. reached through NAT)."""
    holder = None
    for entry in facts.addrs:
        if any(a.get("local") == server_ip for a in entry.get("addr_info", [])):
            holder = entry["ifname"]
    if holder is None:
        return None
    path, stack = set(), [holder]
    while stack:
        name = stack.pop()
        if name in path:
            continue
        path.add(name)
        stack += facts.ports_of(name)  # bridge ports, bond members
        link = facts.link(name) or {}
        if facts.kind(name) in PARENT_KINDS and link.get("link"):
            stack.append(link["link"])
    master = (facts.link(holder) or {}).get("master")
    if master:
        path.add(master)
    return {"address": server_ip, "interface": holder, "path": sorted(path)}


def classify(steps, mgmt, facts):
    """The steps that touch the management path: [{"step", "device", "effect", "cuts"}].
    A move into a bridge or bond is a cut unless the same steps give the new master the
    management address (the module migrates it)."""
    if not mgmt:
        return []
    path, address = set(mgmt["path"]), mgmt["address"]
    readded = {_tokens(line)[-1] for tool, line in steps if _adds_address(tool, line, address)}
    moving = {}  # device -> the master that gets its address: a bond member is set down
    for tool, line in steps:  # to be enslaved, which is part of its move, not a cut
        words = _tokens(line)
        if tool == "ip" and words[:2] == ["link", "set"] and _after(words, "master") in readded:
            moving[_after(words, "dev")] = _after(words, "master")
    found = []
    for tool, line in steps:
        effect = _effect(tool, _tokens(line), path, address, facts, readded, moving)
        if effect is not None:
            device, what = effect
            found.append({"step": "%s %s" % (tool, line), "device": device, "effect": what,
                          "cuts": what in CUTS})  # fmt: skip
    return found


def _tokens(line):
    return line.split()


def _adds_address(tool, line, address):
    words = _tokens(line)
    return (
        tool == "ip" and words[:2] in (["addr", "add"], ["address", "add"])
        and words[2].split("/")[0] == address and "dev" in words
    )  # fmt: skip


def _after(words, keyword):
    return words[words.index(keyword) + 1] if keyword in words[:-1] else None


def _effect(tool, words, path, address, facts, readded, moving):
    if tool == "ovs-vsctl":
        return _ovs_effect([w for w in words if not w.startswith("--")], path, readded)
    if tool != "ip" or len(words) < 3:
        return None
    device = _after(words, "dev")
    if words[:2] == ["link", "del"] or words[:2] == ["link", "delete"]:
        return (device, "delete") if device in path else None
    if words[:2] in (["addr", "del"], ["address", "del"]):
        removed = words[2].split("/")[0] == address
        return (device, "address removed") if removed and not readded else None
    if words[:2] != ["link", "set"] or device not in path:
        return None
    if "down" in words:
        if device in moving:
            return device, "set down to move into %s" % moving[device]
        return device, "down"
    master = _after(words, "master")
    if master is not None:
        return device, "moved into %s" % master if master in readded else "enslaved"
    if "nomaster" in words:
        return device, "released from its master"
    mtu = _after(words, "mtu")
    if mtu is not None and mtu.isdigit():
        old = (facts.link(device) or {}).get("mtu") or 0
        if int(mtu) < MIN_SAFE_MTU:
            return device, "mtu too low"
        if int(mtu) < old:
            return device, "mtu lowered"
    return None


def _ovs_effect(words, path, readded):
    """add-port BR IF, add-bond BR BOND M1 M2..., del-br BR, del-port IF."""
    if words[:1] == ["add-port"] and len(words) > 2 and words[2] in path:
        return words[2], "moved into %s" % words[1] if words[1] in readded else "enslaved"
    if words[:1] == ["add-bond"] and len(words) > 3:
        member = next((m for m in words[3:] if "=" not in m and m in path), None)
        if member is not None:
            return member, "moved into %s" % words[1] if words[1] in readded else "enslaved"
    if words[:1] in (["del-br"], ["del-port"]) and len(words) > 1 and words[-1] in path:
        return words[-1], "delete"
    return None


def describe(found):
    return "; ".join("%s: %s (%s)" % (f["device"], f["effect"], f["step"]) for f in found)


REFUSED = "refused before any change"


class Guard:
    """What the engine consults before it runs a task's steps (vnet_host.execute):
    `classify` names the steps that touch the management path; `allow` refuses those
    that cut it unless a rollback timer was asked for (`explicit`), and otherwise calls
    `arm` (which starts the timer) before they run. Without `arm` (check mode, or no
    timer available) it only classifies and refuses. `client`: the controller's address
    as the host sees it (the route to it)."""

    def __init__(self, server_ip, arm=None, explicit=False, error=Exception, client=None):
        self.server_ip, self.arm, self.explicit, self.error = server_ip, arm, explicit, error
        self.client = client

    def classify(self, steps, facts):
        found = []
        if self.server_ip:
            found = classify(steps, management_path(facts, self.server_ip), facts)
        return found + vnet_fib.path_changes(steps, self.client, facts)

    def refusal(self, found):
        """Why `found` may not run, or None."""
        cuts = [f for f in found if f["cuts"]]
        if cuts and not self.explicit:
            return (
                "%s: it would cut this host off the path vnetctl reaches it by (%s); to "
                "apply it anyway under a rollback timer, run with --confirm-timeout (or "
                "set the play's confirm_timeout)" % (REFUSED, describe(cuts))
            )
        if self.arm is None:
            return "%s: it touches the management path (%s) and no rollback timer can be " \
                "armed here" % (REFUSED, describe(found))  # fmt: skip
        return None

    def allow(self, found):
        problem = self.refusal(found)
        if problem is not None:
            raise self.error(problem)
        self.arm()
