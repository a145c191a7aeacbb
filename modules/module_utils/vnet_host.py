"""Host-side engine shared by every vnetctl module.

Runs on the managed host: Python 3.9+, standard library only, nothing installed.
One path serves apply, check and drift:

    current = module.read(params, facts)        # live state, in the shape of the params
    desired = module.desired(params, current, facts)   # unset = keep; host checks here
    changes = diff_fields(current, desired)     # empty = converged (drift = not empty)
    steps   = module.steps(current, desired, facts)    # pure: facts in, commands out
    apply_steps(steps); verify: re-gather, re-read, changes must be empty
    on failure: roll back with module.steps(now, current) -- the same planner -- then
    re-read: "rolled back" only if the host reads as `current` again

A module is a Python file defining ARGUMENT_SPEC, read(), desired() and steps(). Its
read() covers everything its steps() can change: read()'s output is the rollback target.
Its steps are built with step() (vnet_core), the one writer of command lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_ovs, vnet_params
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_ovs
    import vnet_params

# the rules and the one line writer every module uses (see vnet_core)
ModuleError = vnet_core.ModuleError
ifname_problem = vnet_core.ifname_problem
mesh_name_problem = vnet_core.mesh_name_problem
name_problem = vnet_core.name_problem
check_ifname = vnet_core.check_ifname
NAME_TYPES = vnet_core.NAME_TYPES
line = vnet_core.line
step = vnet_core.step
check_line = vnet_core.check_line
normalize_params = vnet_params.normalize_params

# What modules import under Ansible. `from ansible.module_utils.vnet_host import ...` is
# the form Ansible and Mitogen both recognise as a module with module_utils to ship;
# Mitogen would otherwise run the file as a bare WANT_JSON script, without this library.
HOST_LIBRARY = sys.modules[__name__]

# Kernel tools that accept a batch of commands on stdin: one process per batch.
BATCH_TOOLS = {
    "ip": ["ip", "-batch", "-"],
    "bridge": ["bridge", "-batch", "-"],
    "tc": ["tc", "-batch", "-"],
}


# A command that takes longer is killed and fails the task: a hung `ip` or ovs-vsctl
# must not hold a host's play (and its lock) forever.
RUN_TIMEOUT_S = 120


def run(argv, stdin=None, timeout=RUN_TIMEOUT_S):
    """Run a command, return its stdout; a non-zero exit, or no exit within `timeout`
    seconds (the command is then killed), raises ModuleError."""
    try:
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, check=False, timeout=timeout
        )
    except FileNotFoundError:
        raise ModuleError("command not found on host: %s" % argv[0]) from None
    except subprocess.TimeoutExpired:
        raise ModuleError(
            "%s did not finish within %s s and was killed" % (" ".join(argv[:3]), timeout)
        ) from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise ModuleError("%s failed: %s" % (" ".join(argv[:3]), detail))
    return proc.stdout


class Facts:
    """The host's network state, gathered once and cached until something changes it.

    Built from live commands (Facts.gather) or from recorded data (Facts(data)), so
    planning is tested without a host.
    """

    SOURCES = {
        "links": ["ip", "-j", "-d", "link", "show"],
        "addrs": ["ip", "-j", "addr", "show"],
        "fdb": ["bridge", "-j", "fdb", "show"],
        "ovs": vnet_ovs.FACTS_ARGV,  # Bridge, Port, Interface tables
    }

    def __init__(self, data=None, runner=None):
        self._data = dict(data or {})
        self._runner = runner

    @classmethod
    def gather(cls, runner=run):
        return cls(runner=runner)

    def _get(self, key):
        if key not in self._data:
            if self._runner is None:
                raise ModuleError("recorded facts have no %r" % key)
            if key == "ovs":
                self._data[key] = self._gather_ovs()
            else:
                self._data[key] = json.loads(self._runner(self.SOURCES[key]) or "[]")
        return self._data[key]

    def _gather_ovs(self):
        """None where Open vSwitch is not installed or not running: a fact, not an error."""
        try:
            out = self._runner(self.SOURCES["ovs"])
        except ModuleError:
            return None
        return vnet_ovs.parse_tables(out)

    def refresh(self):
        if self._runner is not None:
            self._data.clear()

    def as_dict(self):
        return {"links": self._get("links"), "addrs": self.addrs, "fdb": self.fdb, "ovs": self.ovs}

    @property
    def links(self):
        return {link["ifname"]: link for link in self._get("links")}

    @property
    def addrs(self):
        return self._get("addrs")

    @property
    def ovs(self):
        """{"bridges": {name: [port names]}, "interfaces": {name: {type, options,
        external_ids}}}, or None without a running Open vSwitch."""
        return self._get("ovs")

    @property
    def fdb(self):
        """Forwarding entries that point at a remote VTEP (learned MACs are left out)."""
        return [entry for entry in self._get("fdb") if "dst" in entry]

    def link(self, name):
        return self.links.get(name)

    def ports_of(self, master):
        return sorted(n for n, link in self.links.items() if link.get("master") == master)

    def kind(self, name):
        link = self.link(name) or {}
        return (link.get("linkinfo") or {}).get("info_kind")

    def admin_up(self, name):
        return "UP" in (self.link(name) or {}).get("flags", [])


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


def diff_fields(current, desired):
    """Field-level differences, dotted paths for nested dicts; lists compare as sets."""
    before, after = flatten(current), flatten(desired)
    changes = []
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if field in after and not _same(old, new):
            changes.append({"field": field, "before": old, "after": new})
    return changes


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


# ---- applying ----------------------------------------------------------------


def batches(steps):
    """Group consecutive steps of the same tool: each group is one process."""
    groups = []
    for tool, line in steps:
        if groups and groups[-1][0] == tool:
            groups[-1][1].append(line)
        else:
            groups.append((tool, [line]))
    return groups


def apply_steps(steps, runner=run):
    """Every line is checked (vnet_core.check_line) before the first process starts: a
    line that could be read as more than one command runs nothing at all."""
    groups = batches(steps)
    for tool, lines in groups:
        if tool != "ovs-vsctl" and tool not in BATCH_TOOLS:
            raise ModuleError("no batch runner for tool %r" % tool)
        for text in lines:
            check_line(text)
    for tool, lines in groups:
        if tool == "ovs-vsctl":
            runner(vnet_ovs.transaction(lines))
        else:
            run_batch(BATCH_TOOLS[tool], lines, runner)


def run_batch(argv, lines, runner=run):
    """One batch process (`ip -batch -`, `ip -n NS -batch -`, ...) fed checked lines."""
    text = "".join(check_line(item) + "\n" for item in lines)
    return runner(argv, stdin=text)


def resource_id(module, params):
    """What a result is about, e.g. "bridge br-vm": drift reports group by it."""
    kind = getattr(module, "RESOURCE", None)
    return "%s %s" % (kind, params.get("name")) if kind else None


def execute(module, params, check, facts, runner=run):
    """Converge one resource (or, in check mode, only say what would change).

    A failed apply, or one that does not converge, is rolled back with the module's own
    planner; the state is then read again and compared with the state read before:
    "(rolled back)" only when they are equal, "rollback incomplete: ..." otherwise."""
    result = {"changed": False, "failed": False, "msg": "", "resource": resource_id(module, params)}
    try:
        if hasattr(module, "ARGUMENT_SPEC"):  # an entry point too: names checked here
            params = normalize_params(module.ARGUMENT_SPEC, params)
        if hasattr(module, "run"):  # modules that are not resources, such as facts
            return module.run(params, check, facts)
        current = module.read(params, facts)
        desired = module.desired(params, current, facts)
        changes = diff_fields(current, desired)
        result.update(diff={"before": current, "after": desired}, changes=changes)
        if not changes:
            result["msg"] = "ok"
            return result
        steps = module.steps(current, desired, facts)
        result.update(changed=True, commands=[" ".join(s) for s in steps])
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
        apply_steps(module.steps(module.read(params, facts), before, facts), runner)
    except ModuleError as exc:
        undo_error = exc
    try:
        facts.refresh()
        after = module.read(params, facts)
    except ModuleError as exc:
        return "; rollback incomplete: the state cannot be read back: %s" % exc
    left = differences(after, before)
    if not left:
        return " (rolled back)"
    text = "; rollback incomplete: " + ", ".join(
        "%s is %r, was %r" % (c["field"], c["after"], c["before"]) for c in left
    )
    return text + (" (rollback failed: %s)" % undo_error if undo_error else "")


def differences(now, before):
    """Every field (dotted path) where `now` and `before` differ, either side missing."""
    old, new = flatten(before), flatten(now)
    return [
        {"field": field, "before": old.get(field), "after": new.get(field)}
        for field in sorted(set(old) | set(new))
        if not _same(old.get(field), new.get(field))
    ]


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
            return json.load(handle)
    from ansible.module_utils.basic import _load_params  # noqa: PLC0415 (Ansible only)

    return _load_params()


def ansible_main(module):
    """Entry point when the module file runs on its own (ansible-playbook, or by hand)."""
    raw = _read_ansible_args()
    check = bool(raw.get("_ansible_check_mode", False))
    params = {k: v for k, v in raw.items() if not k.startswith("_ansible_")}
    result = execute(module, params, check, Facts.gather())  # checks the params first
    print(json.dumps(result))
    sys.exit(1 if result.get("failed") else 0)
