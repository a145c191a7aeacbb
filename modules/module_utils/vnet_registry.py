"""The registry of command writers: every tool a module's steps may name, and for each
how a step is written, how a batch of its steps is applied, how a failed batch is
undone, and what it can cut on the host's management path.

A step is `(tool, line)`, its line built by vnet_core.step() (the one writer of command
lines: no newline, `#`, quote or backslash); a document step also carries the whole
document (`Step.body`). The engine (vnet_host) checks every step of a plan here
(`check_steps`) before check mode reports it or a real run applies it: a tool that is
not registered, or a line not of its tool's form, fails the task the same way in both,
before any change. It then applies the steps here (`apply`), consecutive steps of one
tool as one batch, every line checked again before the first process starts.

    tool       a batch is                          a failed batch
    ip         one `ip -batch -`                   stops at its failing line: what ran
    bridge     one `bridge -batch -`                 before stays, and the task's
    tc         one `tc -batch -`                     rollback (the module's planner,
    sysctl     one `sysctl -q -p -` (KEY=VALUE)      back to read()) undoes it
    nft        one `nft -f -`                      changed nothing (one transaction)
    ovs-vsctl  one ovs-vsctl argv                  changed nothing (one transaction)
    ovs-ofctl  one `--bundle add-flows` per bridge changed nothing (one bundle)
    file       documents written whole             changed nothing (vnet_files)
    virsh      one `virsh` per step (a libvirt     stops at its failing step: the
               network's XML on its stdin)           rollback undoes what ran

The management-path guard (vnet_safety) asks each step's writer what the step does to a
device on the path (`effect`): the effect's name, and whether it cuts (`cuts`).

A new tool is one Writer in WRITERS (docs/architecture.md walks through it): the form
of its lines, how to run a batch, and its effect on the path (None: it never touches
one; say why in its comment).

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_files, vnet_libvirt, vnet_ovs
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_files
    import vnet_libvirt
    import vnet_ovs

ModuleError = vnet_core.ModuleError


Step = vnet_core.Step  # a step that carries a document (`body`)
virsh_step = vnet_libvirt.virsh_step  # a libvirt network's steps (vnet_libvirt)


class Writer:
    """One tool: `form(words)` why a line is not of its form (None: it is); `run(steps,
    runner)` applies a batch; `atomic`: a failed batch changed nothing; `effect(words,
    path)` what the line does to a device of the management path ((device, effect) or
    None; `path`: a Path); `cuts`: those of its effects that cut the path for sure;
    `replays(words)`: a line vnet_reach replays over the host's addresses and routes."""

    def __init__(self, name, form, run, atomic, effect=None, cuts=(), replays=None):
        self.name, self.form, self.run, self.atomic = name, form, run, atomic
        self.effect, self.cuts = effect, tuple(cuts)
        self.replays = replays or (lambda _words: False)


class Path:
    """What a writer's effect reads: the path's devices, the devices the steps give the
    management address (`readded`), the members set down to move into a master that
    receives it (`moving`: {member: master}), a device's MTU now (`mtu_of(device)`) and
    the management address's family (4 or 6)."""

    def __init__(self, devices, readded=(), moving=None, mtu_of=None, family=4):
        self.devices, self.readded, self.moving = set(devices), set(readded), moving or {}
        self.mtu_of, self.family = mtu_of or (lambda _device: None), family


def after(words, keyword):
    return words[words.index(keyword) + 1] if keyword in words[:-1] else None


def _first_word(objects):
    def form(words):
        return None if words[0] in objects else "it starts with %r, not one of %s" % (
            words[0], ", ".join(sorted(objects)))  # fmt: skip

    return form


def _batch(argv):
    def run(steps, runner):
        return run_batch(argv, [text for _, text in steps], runner)

    return run


def run_batch(argv, lines, runner=vnet_core.run):
    """One batch process (`ip -batch -`, `ip -n NS -batch -`, ...) fed checked lines."""
    text = "".join(vnet_core.check_line(item) + "\n" for item in lines)
    return runner(argv, stdin=text)


# ---- ip, bridge, tc ------------------------------------------------------------------

MIN_SAFE_MTU = 576  # below it, IPv4 hosts are not required to accept datagrams (RFC 791)


def _ip_effect(words, path):
    device = after(words, "dev")
    if words[:2] in (["link", "del"], ["link", "delete"]):
        return (device, "delete") if device in path.devices else None
    if words[:2] != ["link", "set"] or device not in path.devices or len(words) < 3:
        return None
    if "down" in words:
        if device in path.moving:
            return device, "set down to move into %s" % path.moving[device]
        return device, "down"
    master = after(words, "master")
    if master is not None:
        return device, "moved into %s" % master if master in path.readded else "enslaved"
    if "nomaster" in words:
        return device, "released from its master"
    mtu = after(words, "mtu")
    if mtu is not None and mtu.isdigit():
        old = path.mtu_of(device) or 0
        if int(mtu) < MIN_SAFE_MTU:
            return device, "mtu too low"
        if int(mtu) < old:
            return device, "mtu lowered"
    return None


def _ip_replays(words):
    """Addresses, routes and deleted devices change what reaches the controller."""
    return words[:1] in (["addr"], ["address"], ["route"]) or words[:2] in (
        ["link", "del"], ["link", "delete"])  # fmt: skip


def _bridge_effect(words, path):
    device = after(words, "dev")
    return (device, "VLANs changed") if words[:1] == ["vlan"] and device in path.devices else None


def _tc_effect(words, path):
    """Queueing and filters decide what leaves and enters a device: a rate or a filter
    on the path can starve the session. Not a cut: applied under the rollback timer."""
    device = after(words, "dev")
    return (device, "traffic control changed") if device in path.devices else None


# ---- sysctl --------------------------------------------------------------------------

SYSCTL_KEY_CHARS = frozenset(vnet_core.IFNAME_CHARS)
PROMOTE_SUFFIX = "/promote_secondaries"  # followed by vnet_reach, as the kernel would


def sysctl_form(words):
    """One word KEY=VALUE, the key in its "/" form (a device name may hold dots):
    `sysctl -p` reads a line starting with '-' as "ignore errors", and other words as
    more keys."""
    key, equals, value = words[0].partition("=")
    parts = key.split("/")
    if len(words) != 1 or not equals or not value or len(parts) < 2 or key.startswith("-") \
            or not all(p.strip(".") and set(p) <= SYSCTL_KEY_CHARS for p in parts):  # fmt: skip
        return "a sysctl step is one KEY=VALUE word, the key in its '/' form " \
            "(net/ipv4/ip_forward=1)"  # fmt: skip
    return None


def sysctl_step(key, value):
    """The step setting `key` ("net.ipv4.ip_forward", or its "/" form) to `value`."""
    slashed = key if "/" in key else key.replace(".", "/")
    step = vnet_core.step("sysctl", "%s=%s" % (slashed, value))
    problem = sysctl_form([step[1]])
    if problem is not None:
        raise ModuleError("refusing sysctl %r: %s" % (key, problem))
    return step


def sysctl_device(words):
    """DEV of net/ipv4/conf/DEV/KEY, net/ipv6/conf/DEV/KEY, net/ipv4/neigh/DEV/KEY."""
    parts = words[0].partition("=")[0].split("/")
    return parts[3] if len(parts) > 4 and parts[2] in ("conf", "neigh") else None


def _sysctl_effect(words, path):
    """A device's own settings (or `all`'s) on the path: disabling IPv6 removes an IPv6
    management address; the others (ARP, filters, RAs) run under the timer.
    promote_secondaries is followed by vnet_reach."""
    key, _, value = words[0].partition("=")
    device = sysctl_device(words)
    if device is None or key.endswith(PROMOTE_SUFFIX):
        return None
    if device not in path.devices and device != "all":
        return None
    if key.endswith("/disable_ipv6"):
        return (device, "address removed") if value == "1" and path.family == 6 else None
    return device, "setting changed"


# ---- nft, ovs-vsctl, ovs-ofctl --------------------------------------------------------

NFT_COMMANDS = ("add", "create", "insert", "replace", "delete", "destroy", "flush")
OVS_VSCTL_OPTIONS = ("--if-exists", "--may-exist", "--id=@")  # per command, never global


def _port_security(tool, words, path):
    """Rules that filter what a device on the path lets in: nftables elements or rules
    naming it (port_group), OpenFlow rules for it (`in_port=`, ovs_port_group). On the
    way in from the controller they drop its frames: no guest's MAC or IP is its own."""
    if tool == "nft" and words[4:5] and words[4].startswith("copy/"):
        return None  # a copy to a promiscuous port (the netdev table's copy/ chains) drops nothing
    if tool == "nft" and words[:1] in (["add"], ["insert"], ["replace"], ["create"]):
        named = [w for w in words if w.strip('"{},') in path.devices]
        return (named[0].strip('"{},'), "port security") if named else None
    if tool == "ovs-ofctl" and words[1:2] == ["add"]:
        fields = dict(f.partition("=")[::2] for f in " ".join(words[2:]).split(","))
        return (fields["in_port"], "port security") if fields.get("in_port") in path.devices \
            else None  # fmt: skip
    return None


def _ovs_vsctl_form(words):
    bad = [w for w in words if w.startswith("--") and not w.startswith(OVS_VSCTL_OPTIONS)]
    return "%r: a global option would change the whole transaction" % bad[0] if bad else None


def _ovs_vsctl_effect(words, path):
    """add-port BR IF, add-bond BR BOND M1 M2..., del-br BR, del-port IF, and a port's
    VLAN settings (set/clear port IF tag|trunks|vlan_mode)."""
    words = [w for w in words if not w.startswith("--")]
    on = path.devices
    if words[:1] == ["add-port"] and len(words) > 2 and words[2] in on:
        return words[2], "moved into %s" % words[1] if words[1] in path.readded else "enslaved"
    if words[:1] == ["add-bond"] and len(words) > 3:
        member = next((m for m in words[3:] if "=" not in m and m in on), None)
        if member is not None:
            return member, "moved into %s" % words[1] if words[1] in path.readded else "enslaved"
    if words[:1] in (["del-br"], ["del-port"]) and len(words) > 1 and words[-1] in on:
        return words[-1], "delete"
    if words[:1] == ["del-bond-iface"] and len(words) > 2 and words[2] in on:
        return words[2], "released from its master"
    vlan = any(w.partition("=")[0] in ("tag", "trunks", "vlan_mode") for w in words[3:])
    if words[:2] in (["set", "port"], ["clear", "port"]) and vlan and words[2] in on:
        return words[2], "VLANs changed"
    return None


def _run_vsctl(steps, runner):
    runner(vnet_ovs.transaction([text for _, text in steps]))


def _ofctl_form(words):
    if len(words) != 3 or words[1] not in ("add", "delete", "delete_strict"):
        return "an ovs-ofctl step is BRIDGE add|delete|delete_strict FLOW"
    return None if vnet_core.ifname_problem(words[0]) is None else "%r is no bridge" % words[0]


def _run_ofctl(steps, runner):
    for argv, text in vnet_ovs.ofctl_batches([line for _, line in steps]):
        runner(argv, stdin=text)


# ---- documents -----------------------------------------------------------------------


def document_step(path, content, mode=0o644):
    """The step writing `content` (text) as the whole file `path` (with `mode`): a
    reader sees the old content or the new one, never part of it. None for `content`:
    the file removed."""
    if content is None:
        return Step("file", vnet_core.line("remove", path))
    if not isinstance(content, str):
        raise ModuleError("refusing to write %s: its content is not text" % path)
    return Step("file", vnet_core.line("write", path), content, mode)


def _file_form(words):
    if len(words) != 2 or words[0] not in ("write", "remove"):
        return "a file step is `write PATH` or `remove PATH`"
    path = words[1]
    if not path.startswith("/") or "//" in path or any(p in (".", "..") for p in path.split("/")):
        return "%r is not an absolute path in its plain form" % path
    return None


def _run_files(steps, _runner):
    """Every document of the batch staged, then all renamed into place (vnet_files):
    all of them or none, also on a full disk."""
    writes, removals = [], []
    for step in steps:
        verb, path = step[1].split(" ")
        if verb == "write":
            body = getattr(step, "body", None)
            if body is None:
                raise ModuleError("refusing to write %s: the step carries no document" % path)
            writes.append((path, body, getattr(step, "mode", 0o644)))
        else:
            removals.append(path)
    try:
        vnet_files.replace_files(writes, removals=removals)
    except OSError as exc:
        raise ModuleError("cannot write %s: %s" % (exc.filename, exc.strerror)) from None


# ---- the registry --------------------------------------------------------------------

IP_CUTS = ("down", "delete", "enslaved", "address removed", "mtu too low")

WRITERS = {w.name: w for w in (
    Writer("ip", _first_word(("link", "addr", "address", "route", "rule", "neigh")),
           _batch(["ip", "-batch", "-"]), False, _ip_effect, IP_CUTS, _ip_replays),
    Writer("bridge", _first_word(("vlan", "fdb", "link", "mdb")),
           _batch(["bridge", "-batch", "-"]), False, _bridge_effect),
    Writer("tc", _first_word(("qdisc", "class", "filter")), _batch(["tc", "-batch", "-"]),
           False, _tc_effect),
    Writer("sysctl", sysctl_form, _batch(["sysctl", "-q", "-p", "-"]), False, _sysctl_effect,
           ("address removed",), lambda words: words[0].partition("=")[0].endswith(PROMOTE_SUFFIX)),
    Writer("nft", _first_word(NFT_COMMANDS), _batch(["nft", "-f", "-"]), True,
           lambda words, path: _port_security("nft", words, path), ("port security",)),
    Writer("ovs-vsctl", _ovs_vsctl_form, _run_vsctl, True, _ovs_vsctl_effect,
           ("enslaved", "delete")),
    Writer("ovs-ofctl", _ofctl_form, _run_ofctl, True,
           lambda words, path: _port_security("ovs-ofctl", words, path), ("port security",)),
    # documents are files, not devices: writing one changes no device on the path
    Writer("file", _file_form, _run_files, True),
    # bridge-mode networks only (libvirt_network): libvirt neither makes nor changes
    # their bridge, nor any port of it; a guest's tap comes and goes with the guest
    Writer("virsh", vnet_libvirt.virsh_form, vnet_libvirt.run_virsh, False),
)}  # fmt: skip


def writer(tool):
    found = WRITERS.get(tool)
    if found is None:
        raise ModuleError(
            "no writer for tool %r (the tools: %s; a new one is registered in "
            "vnet_registry.WRITERS)" % (tool, ", ".join(sorted(WRITERS)))
        )
    return found


def check_steps(steps):
    """Every step's tool registered and its line of the tool's form (and the line
    writer's: vnet_core.check_line), or ModuleError: check mode says what apply would."""
    for step in steps:
        if not isinstance(step, tuple) or len(step) != 2:
            raise ModuleError("refusing step %r: a step is (tool, line)" % (step,))
        tool, text = step
        found = writer(tool)
        problem = found.form(vnet_core.check_line(text).split(" "))
        if problem is not None:
            raise ModuleError("refusing to run %s %r: %s" % (tool, text, problem))
    return steps


def batches(steps):
    """Consecutive steps of one tool, grouped: [(tool, [steps])], each one batch."""
    groups = []
    for step in steps:
        if groups and groups[-1][0] == step[0]:
            groups[-1][1].append(step)
        else:
            groups.append((step[0], [step]))
    return groups


def apply(steps, runner=vnet_core.run):
    """Every step checked (check_steps) before the first process starts: a step no
    writer would run, or a line that could be read as more than one command, runs
    nothing at all. Then one batch per run of steps of one tool."""
    check_steps(steps)
    for tool, group in batches(steps):
        WRITERS[tool].run(group, runner)


def replayed(step):
    """Whether vnet_reach replays the step (the guard follows the way to the controller
    through the steps only when one of them is)."""
    return writer(step[0]).replays(step[1].split())


def device(step):
    """The device a step names (`dev DEV`, a sysctl key's conf/DEV/), or None."""
    words = step[1].split()
    return sysctl_device(words) if step[0] == "sysctl" else after(words, "dev")


def effect(step, path):
    """(device, effect) of a step on the management path, or None."""
    found = writer(step[0])
    return found.effect(step[1].split(), path) if found.effect is not None else None


# every effect a writer names that cuts the path (the guard adds its own: vnet_safety)
CUTS_NAMED = tuple(sorted({cut for w in WRITERS.values() for cut in w.cuts}))
