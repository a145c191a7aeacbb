"""The host library every vnetctl module uses, and the module contract.

Runs on the managed host: Python 3.9+, standard library only, nothing installed. A play
ships the module_utils files its modules name (imports, found by name in their source,
and what those name in turn) and those vnetctl's host program uses itself, compiled there
for every play: keep them small, and let each import only the files sorted before it
(vnetctl installs them in that order, vnet_host last; tests/unit/
test_host_library_layout.py checks both).

A MODULE is one file in modules/ (standard library only), run by vnetctl or, unchanged,
by ansible-playbook. It imports this library as `host` (`from ansible.module_utils.
vnet_host import HOST_LIBRARY as host`, falling back to `import vnet_host as host`),
ends with `host.ansible_main(sys.modules[__name__])` under `if __name__ == "__main__"`,
and defines:

ARGUMENT_SPEC  {name: rule}, checked by the one rulebook (vnet_params) on the controller
    (file:line, before any host is touched) and again here. Rule keys: type, one of str
    (the default), int, float, bool, list (+ elements), dict (+ options: a spec for its
    keys, or for each dict of a list), raw, ifname (an interface name by the kernel's
    and iproute2's rules), meshname, objname (any other name: one word, printable),
    ipaddr (a next hop), ipdest (a route's destination), rtable (a routing table);
    required; default; choices; range ([low, high]:
    put a value's universal range here, e.g. MTU [68, 65535], so the controller refuses
    it); controller (True: an argument vnetctl reads on the controller, e.g. vxlan_mesh's
    members, vtep, vtep_interface; stripped there, ignored here). Unset arguments are
    None. Not allowed: aliases (ansible-playbook does not apply this rulebook, so they
    would break there; a spec with one is refused), or any other rule key.
RESOURCE  what a task is about ("bridge"): results say "bridge NAME", drift groups by it.
resource_name(params) -> str  optional: NAME for a module without a `name` argument (a
    route is named by its destination, table and metric).
FACTS  optional {name: source}: what the module reads beyond the built-in sources (links,
    addrs, fdb, ovs): command(argv, parse), per_device(argv with "{dev}", parse) or
    ovsdb({table: [columns]}, parse), all from this library; parsers are pure functions
    of the output. Gathered lazily, once per play, merged where the tool allows (see
    vnet_facts); read with facts.get(name[, dev]). Links, addresses and routes are read
    through the host's model, facts.net (vnet_hostnet). A module runs no command of its
    own to read state, so its planning is tested on recorded facts (Facts(data)).
read(params, facts) -> current  the live state in the shape of the params ("state":
    "absent" for what does not exist). It covers everything steps() can change, side
    effects included (a bridge's MTU task changes its ports' MTUs: read() reports them):
    read()'s output is the rollback target.
desired(params, current, facts) -> desired  the declared values over the current ones
    (merge_desired: unset = keep). Refuse here (ModuleError) what the host cannot do,
    before any change. A `waiting` key ({field: why}) names what is declared but cannot be
    made yet (a mirror's VM port): left out of the plan, said in the result, drift.
steps(current, desired, facts) -> [(tool, line)]  pure: the commands from current to
    desired, each built by step() (vnet_core: the one writer of command lines), or by
    sysctl_step(key, value), document_step(path, text) (a whole file) and virsh_step(
    command, network, ..., xml=) (a libvirt network). The tools are those vnet_registry
    registers (ip, bridge, tc, sysctl, nft, ovs-vsctl, ovs-ofctl, file, virsh), each
    with the form of its lines, checked when planning: a step no writer would run fails
    check mode as it would fail the real run. `desired` may be any earlier read()
    output (a rollback).
Nested state is a dict keyed by identity (ports_mtu: {port: mtu}; segments: {vni: {..}}),
    never a list of objects: diffs are per field (dotted paths) and drift then sees a
    missing or an extra object. Lists compare as sets: keep them to flat lists of names.
snapshot(facts) -> [params], SNAPSHOT_ORDER  optional: the params that declare what the
    host has (applying them plans nothing); lower orders first (what makes devices before
    what uses them). Controller-only arguments are left to the controller.
run(params, check, facts) -> result  instead of read/desired/steps, for a module that
    manages no resource (facts, overlay_probe).
planned_addresses(params) -> {device: {"addresses": [cidr], "mtu": n}}  optional: the
    addresses a task gives, so the fleet's preflight plans later tasks of the play on
    facts that have them (ovs_bridge: a VXLAN mesh whose VTEP is on a bridge it makes).
persist(params, desired, facts, units)  the boot configuration of `desired`, rendered
    into `units` (systemd-networkd files, sysctl.d; README, "Boot persistence"), which
    vnetctl's host program writes after the task (none for `state: absent`: files go).
    A resource without it says why in NOT_PERSISTED (text).

The ENGINE (plan(), execute()) does the rest, one path for apply, check and drift:

    current = read(params, facts); desired = desired(params, current, facts)
    changes = diff_fields(current, desired)     # empty = converged (drift = not empty)
    steps   = steps(current, desired, facts)
    apply; verify: refresh facts, read again, no change may be left;
    on failure: plan from the state now back to `current` with the same steps(), apply,
    read again: "(rolled back)" only when the host reads as `current`.

Results: changed, failed, msg, resource, diff {before, after}, changes [{field, before,
after}], commands, waiting {field: why} (what desired() could not plan yet).
"""

import os
import sys

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import (
        vnet_core,
        vnet_facts,
        vnet_hostnet,
        vnet_ovs,
        vnet_params,
        vnet_registry,  # fmt: skip
    )
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_hostnet
    import vnet_ovs
    import vnet_params
    import vnet_registry

# the rules and the one line writer every module uses (see vnet_core)
ModuleError = vnet_core.ModuleError
ifname_problem = vnet_core.ifname_problem
mesh_name_problem = vnet_core.mesh_name_problem
name_problem = vnet_core.name_problem
check_ifname = vnet_core.check_ifname
ip_value = vnet_core.ip_value
NAME_TYPES = vnet_core.NAME_TYPES
line = vnet_core.line
step = vnet_core.step
check_line = vnet_core.check_line
run = vnet_core.run
run_status = vnet_core.run_status
RUN_TIMEOUT_S = vnet_core.RUN_TIMEOUT_S
# arguments (see vnet_params) and fact sources (see vnet_facts)
normalize_params = vnet_params.normalize_params
ArgumentError = vnet_params.ArgumentError
command = vnet_facts.command
per_device = vnet_facts.per_device
parse_json = vnet_facts.parse_json
ovsdb = vnet_ovs.ovsdb
# the command writers (see vnet_registry): applying steps, sysctl and document steps
apply_steps, batches = vnet_registry.apply, vnet_registry.batches
run_batch = vnet_registry.run_batch
sysctl_step, document_step = vnet_registry.sysctl_step, vnet_registry.document_step
virsh_step = vnet_registry.virsh_step

# What modules import under Ansible. `from ansible.module_utils.vnet_host import ...` is
# the form Ansible and Mitogen both recognise as a module with module_utils to ship;
# Mitogen would otherwise run the file as a bare WANT_JSON script, without this library.
HOST_LIBRARY = sys.modules[__name__]


def remote_vteps(output):
    """`bridge -j fdb show`, only the entries that point at a remote VTEP (`dst`)."""
    return [entry for entry in parse_json(output) if "dst" in entry]


class Facts(vnet_facts.Facts):
    """The host's facts (see vnet_facts); the built-in sources are declared here the
    way a module declares its own."""

    SOURCES = {
        "links": command(["ip", "-j", "-d", "link", "show"]),
        "addrs": command(["ip", "-j", "addr", "show"]),
        "fdb": command(["bridge", "-j", "fdb", "show"], parse=remote_vteps),
        "ovs": vnet_ovs.ovsdb(vnet_ovs.TABLES, vnet_ovs.summary),  # None without OVS
    }
    MODEL = vnet_hostnet.Network


# ---- comparing -----------------------------------------------------------------


def flatten(value, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}: the field paths of diffs and drift reports."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, "%s.%s" % (prefix, key) if prefix else str(key)))
        return out
    return {prefix: value}


def _same(before, after):
    if isinstance(before, list) and isinstance(after, list):
        return sorted(map(str, before)) == sorted(map(str, after))
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        return abs(before - after) < 1e-6
    return before == after


def diff_fields(current, desired, every=False):
    """Field-level differences [{field, before, after}], dotted paths for nested dicts;
    lists compare as sets. A field `desired` leaves out keeps its value (unset = keep),
    unless `every`: then a field either side lacks differs too (a rollback's target,
    and whether the host reads as it did)."""
    before, after = flatten(current), flatten(desired)
    return [
        {"field": field, "before": before.get(field), "after": after.get(field)}
        for field in sorted(set(before) | set(after))
        if (every or field in after) and not _same(before.get(field), after.get(field))
    ]


def merge_desired(current, params):
    """Partial desired state: a parameter left unset (None) keeps the current value."""
    desired = dict(current)
    desired.update({k: v for k, v in params.items() if v is not None})
    return desired


# ---- MTU ordering ----------------------------------------------------------------


def _level(name, lowers_of, seen=()):
    """0 for a device with no lowers; an upper sits one above its highest lower."""
    lowers = [p for p in lowers_of(name) if p not in seen]
    if not lowers:
        return 0
    return 1 + max(_level(p, lowers_of, seen + (name,)) for p in lowers)


def mtu_steps(new_mtus, facts, planned_ports=None):
    """`ip` steps setting MTUs in a safe order.

    Raising: lower devices first, so an upper never exceeds what its ports carry.
    Lowering: upper devices first, for the same reason. Unchanged devices are skipped.
    `planned_ports` (upper -> ports) adds relations that do not exist yet.
    """
    planned = planned_ports or {}

    def lowers_of(name):
        return sorted(set(facts.ports_of(name)) | set(planned.get(name, ())))

    raises, lowers = [], []
    for name, mtu in new_mtus.items():
        link = facts.link(name)
        old = link["mtu"] if link else None
        if old is None or mtu > old:
            raises.append(name)
        elif mtu < old:
            lowers.append(name)
    raises.sort(key=lambda n: (_level(n, lowers_of), n))
    lowers.sort(key=lambda n: (-_level(n, lowers_of), n))
    return [step("ip", "link", "set", "dev", n, "mtu", new_mtus[n]) for n in lowers + raises]


def check_mtu_range(name, mtu, facts):
    """The device's min_mtu..max_mtu; a max of 0 (lo, and devices without a limit) is no
    maximum, as the kernel reads it (net/core/dev.c dev_validate_mtu)."""
    link = facts.link(name) or {}
    low, high = link.get("min_mtu"), link.get("max_mtu") or None
    if low is not None and mtu < low or high is not None and mtu > high:
        shown = "%s..%s" % (low, high) if high is not None else "%s and above" % low
        raise ModuleError("mtu %d for %s is outside the device's range %s" % (mtu, name, shown))


# ---- planning and applying ------------------------------------------------------


def snapshot(module, facts):
    """The module's snapshot(facts): the params that declare what the host has; none
    from facts recorded before a source the module reads existed (a fixture, a saved
    `vnetctl facts`): they cannot say."""
    try:
        return module.snapshot(facts)
    except vnet_facts.Missing:
        return []


def resource_id(module, params):
    """What a result is about, e.g. "bridge br-vm": drift reports group by it."""
    kind = getattr(module, "RESOURCE", None)
    name = module.resource_name(params) if hasattr(module, "resource_name") else params.get("name")
    return "%s %s" % (kind, name) if kind else None


def checked_params(module, params):
    """The rulebook's form of `params` (execute is an entry point: names checked here),
    once: arguments normalize_params returned (vnet_params.Checked) are not checked
    again."""
    spec = getattr(module, "ARGUMENT_SPEC", None)
    if spec is None or isinstance(params, vnet_params.Checked):
        return params
    return normalize_params(spec, params)


def plan(module, params, facts, target=None):
    """The one planning path (execute, rollbacks and the plan fixtures use it): params
    checked by the rulebook, current = read(), desired = desired() -- or `target`, a
    state read() returned earlier, for a rollback --, the changes, and the steps.
    Returns {params, current, desired, changes, steps}; ModuleError when refused."""
    params = checked_params(module, params)
    current = module.read(params, facts)
    if target is None:
        desired = module.desired(params, current, facts)
        waiting = desired.pop("waiting", None)  # not planned: said (see the contract)
        changes = diff_fields(current, desired)
    else:
        desired, changes, waiting = target, diff_fields(current, target, every=True), None
    steps = module.steps(current, desired, facts) if changes else []
    vnet_registry.check_steps(steps)  # check mode promises only what apply can run
    return {"params": params, "current": current, "desired": desired, "changes": changes,
            "steps": steps, "waiting": waiting or {}}  # fmt: skip


def execute(module, params, check, facts, runner=run, guard=None):
    """Converge one resource (or, in check mode, only say what would change).

    A failed apply, or one that does not converge, is rolled back with the module's own
    planner; the state is then read again and compared with the state read before:
    "(rolled back)" only when they are equal, "rollback incomplete: ..." otherwise.
    `guard` (vnetctl's host process passes one; see vnetctl/hostside/play.py) sees the
    steps first: `guard.classify(steps, facts)` names those that touch the host's
    management path (reported as `management_path`), `guard.allow(found)` refuses them
    (ModuleError; in check mode too, as the real run would) or arms the rollback timer
    before they run."""
    result = {"changed": False, "failed": False, "msg": "", "resource": resource_id(module, params)}
    try:
        if hasattr(module, "run"):  # modules that are not resources, such as facts
            return module.run(checked_params(module, params), check, facts)
        planned = plan(module, params, facts)
        params, current, desired = planned["params"], planned["current"], planned["desired"]
        result["resource"] = resource_id(module, params)  # defaults filled in
        changes, steps = planned["changes"], planned["steps"]
        result.update(diff={"before": current, "after": desired}, changes=changes)
        result.update({"waiting": planned["waiting"]} if planned["waiting"] else {})
        if not changes:
            result["msg"] = "ok"
            return result
        result.update(changed=True, commands=[" ".join(s) for s in steps])
        touching = guard.classify(steps, facts) if guard is not None else []
        if touching:  # refused in check mode too (ModuleError), else the timer armed
            result["management_path"] = touching
            guard.allow(touching)
        if check:
            result["msg"] = "would be " + _summary(current, desired, changes)
            return result
        failure = _apply_and_verify(module, params, desired, steps, facts, runner)
        if failure is not None:
            raise ModuleError(failure + roll_back(module, params, current, facts, runner))
        result["msg"] = _summary(current, desired, changes)
    except ModuleError as exc:
        result.update(failed=True, msg=str(exc))
    return result


def _apply_and_verify(module, params, desired, steps, facts, runner):
    """None when the steps ran and the host reads back as desired; else what went wrong."""
    try:
        apply_steps(steps, runner)
        facts.refresh()
        left = diff_fields(module.read(params, facts), desired)
    except ModuleError as exc:
        return str(exc)
    return "did not converge: " + _describe(left) if left else None


def roll_back(module, params, before, facts, runner=run):
    """Plan from the state now back to `before` (the module's read() before the task, a
    valid target for its steps()), apply, read again: the suffix for the task's message."""
    undo_error = None
    try:
        facts.refresh()
        apply_steps(plan(module, params, facts, target=before)["steps"], runner)
    except ModuleError as exc:
        undo_error = exc
    try:
        facts.refresh()
        after = module.read(params, facts)
    except ModuleError as exc:
        return "; rollback incomplete: the state cannot be read back: %s" % exc
    left = diff_fields(before, after, every=True)
    if not left:
        return " (rolled back)"
    text = "; rollback incomplete: " + ", ".join(
        "%s is %r, was %r" % (c["field"], c["after"], c["before"]) for c in left
    )
    return text + (" (rollback failed: %s)" % undo_error if undo_error else "")


def _summary(current, desired, changes):
    if current.get("state") == "absent" and desired.get("state") == "present":
        return "created"
    if desired.get("state") == "absent" and current.get("state") == "present":
        return "removed"
    return "changed: " + ", ".join(c["field"] for c in changes)


def _describe(changes):
    return ", ".join("%s is %r, wanted %r" % (c["field"], c["before"], c["after"]) for c in changes)


# ---- the Ansible entry point ---------------------------------------------------


def _read_ansible_args():
    """WANT_JSON passes a file path as argv[1]; AnsiballZ keeps the args in memory."""
    if len(sys.argv) > 1 and os.path.isfile(sys.argv[1]):
        with open(sys.argv[1]) as handle:
            return vnet_core.loads(handle.read())
    from ansible.module_utils.basic import _load_params  # noqa: PLC0415 (Ansible only)

    return _load_params()


def ansible_main(module):
    """Entry point when the module file runs on its own (ansible-playbook, or by hand)."""
    raw = _read_ansible_args()
    check = bool(raw.get("_ansible_check_mode", False))
    params = {k: v for k, v in raw.items() if not k.startswith("_ansible_")}
    facts = Facts.gather(modules=[module])
    result = execute(module, params, check, facts)  # checks the params first
    print(vnet_core.dumps(result))
    sys.exit(1 if result.get("failed") else 0)
