"""Safe apply, on the host: the management-path guard, and commit confirmed (a play
applied under a rollback timer).

The guard (the host library's vnet_safety.Guard, consulted by the engine before any step
runs) refuses the steps that cut the path the controller's session arrived on unless a
rollback timer was asked for (--confirm-timeout), and has `Confirm` arm the timer
before the others. Its `preflight` plans every task of the play on the facts before the
first change, so a play that would cut the host off is refused before anything on the
host changes.

Runs on the host (Python 3.9+, standard library only), shipped in the play's payload and
compiled only when a play arms it. Before the play's first change that needs it, the
host process forks the watchdog: a process in a session of its own, with no link to the
SSH session (stdin, stdout and stderr on /dev/null), so it survives the session dying.
It holds the state from before the play: a journal of (module, params, state before)
per task, appended as the play goes on. Files live in one directory per play:

    armed      exists while the play waits for confirmation
    journal    one JSON line per task applied: {"module", "params", "before", "task"}, and
               per task that wrote boot configuration files (vnet_persist) their content
               before it: {"task", "files": [{"path", "before"}]} (None: no file)
    confirmed  the controller proved it can still reach the host (a new connection)
    expired    the deadline passed first: the watchdog rolls back
    result     after a rollback: {"rolled_back": bool, "left": [...], "after_task": ...}

Whichever of `confirmed` / `expired` is made first (both by renaming `armed`, which only
one rename can do) decides. On `confirmed` the watchdog removes the directory and exits;
on `expired` it undoes the journal in reverse with each module's own planner, re-reads,
writes `result` and exits. The controller reads and removes `result` when it is back.
"""

import os
import time

# json, shutil: imported where used; every apply play loads this file, but only a play
# that arms the timer (or a confirmation) writes the journal or removes its directory

POLL = 0.2  # seconds between looks for a confirmation
STATE_ROOT = "/run/lock"  # tmpfs, writable by root and by sudo users; gone at reboot


def play_dir(play_id, root=None):
    return os.path.join(root or STATE_ROOT, "vnetctl-confirm-%s" % play_id)


class Journal:
    """The play's tasks, each with the state it had before: the rollback target."""

    def __init__(self):
        self.entries = []
        self._path = None

    def record(self, task, module, params, before):
        entry = {"task": task, "module": module, "params": params, "before": before}
        self.entries.append(entry)
        if self._path is not None:
            self._append(entry)

    def record_files(self, task, root, changes):
        """Boot configuration files a task wrote or removed, as they were before it."""
        files = [{"path": os.path.join(root, c["path"]), "before": c["before"]} for c in changes]
        self.entries.append({"task": task, "files": files})
        if self._path is not None:
            self._append(self.entries[-1])

    def attach(self, path):
        """From now on every entry goes to `path` too (entries so far are written)."""
        self._path = path
        for entry in self.entries:
            self._append(entry)

    def _append(self, entry):
        import json  # noqa: PLC0415

        with open(self._path, "a") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")


def arm(directory, timeout, journal, host, modules, hold_lock=None):
    """Fork the watchdog; returns its pid. The caller goes on with the play.
    `hold_lock(pid)` records the watchdog as a holder of the host lock (it shares the
    play's flock) and returns the file to remove when it is done."""
    os.makedirs(directory, mode=0o700)
    open(os.path.join(directory, "armed"), "w").close()
    journal.attach(os.path.join(directory, "journal"))
    deadline = time.time() + timeout
    pid = os.fork()
    if pid:
        return pid
    holder = None
    try:  # the watchdog: cut every tie with the session, then wait
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if hold_lock is not None:
            holder = hold_lock(os.getpid())
        _watch(directory, deadline, host, modules)
    finally:
        if holder is not None:
            try:
                os.unlink(holder)
            except OSError:
                pass
        os._exit(0)


def _watch(directory, deadline, host, modules):
    import shutil  # noqa: PLC0415

    armed = os.path.join(directory, "armed")
    while time.time() < deadline:
        if os.path.exists(os.path.join(directory, "confirmed")):
            shutil.rmtree(directory, ignore_errors=True)
            return
        time.sleep(POLL)
    try:
        os.rename(armed, os.path.join(directory, "expired"))
    except OSError:  # confirmed at the last moment
        shutil.rmtree(directory, ignore_errors=True)
        return
    result = roll_back(_read_journal(directory), host, modules)
    _write_json(os.path.join(directory, "result"), result)
    try:
        os.unlink(os.path.join(directory, "journal"))
    except OSError:
        pass


def _read_journal(directory):
    import json  # noqa: PLC0415

    try:
        with open(os.path.join(directory, "journal")) as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except OSError:
        return []


def roll_back(entries, host, modules):
    """Undo the journal's tasks, newest first, with each module's planner. Each task's
    resource is re-read right after its own undo and compared with its state before it:
    the later tasks are undone by then, so that is the state the host must be in. Two
    tasks of one resource thus each meet their own before-state, and when every one
    does, the host is as it was before the play."""
    problems, left = [], []
    for entry in reversed(entries):
        if "files" in entry:
            problems += _restore(entry)
            continue
        module = modules[entry["module"]]
        facts = host.Facts.gather(modules=list(modules.values()))
        try:
            now = module.read(entry["params"], facts)
            host.apply_steps(module.steps(now, entry["before"], facts))
        except Exception as exc:  # go on: the other tasks are undone all the same
            problems.append("%s: %s" % (entry["task"], exc))
        left += _left(entry, host, modules)
    return {
        "rolled_back": not left,
        "left": left,
        "problems": problems,
        "after_task": entries[-1]["task"] if entries else None,
        "at": time.time(),
    }


def _left(entry, host, modules):
    """What differs from the task's state before it, re-read now."""
    facts = host.Facts.gather(modules=list(modules.values()))
    try:
        now = modules[entry["module"]].read(entry["params"], facts)
    except Exception as exc:
        return ["%s: cannot re-read: %s" % (entry["task"], exc)]
    return [
        "%s: %s is %r, was %r" % (entry["task"], c["field"], c["after"], c["before"])
        for c in host.differences(now, entry["before"])
    ]


def _restore(entry):
    """The task's boot configuration files as they were: rewritten, or removed."""
    problems = []
    for item in entry["files"]:
        try:
            if item["before"] is None:
                if os.path.lexists(item["path"]):
                    os.unlink(item["path"])
                continue
            os.makedirs(os.path.dirname(item["path"]), exist_ok=True)
            with open(item["path"] + ".tmp", "w") as handle:
                handle.write(item["before"])
            os.rename(item["path"] + ".tmp", item["path"])
        except OSError as exc:
            problems.append("%s: %s: %s" % (entry["task"], item["path"], exc))
    return problems


def _write_json(path, data):
    import json  # noqa: PLC0415

    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle)
    os.rename(tmp, path)


# ---- the play's side: the journal, the guard ----------------------------------


class ArmError(Exception):
    """The rollback timer could not be armed: the play does not start."""


class Confirm:
    """Commit confirmed for one play: every task's state before it is journaled, and the
    watchdog armed before the first change (asked for) or before the first step that
    touches the management path (by itself)."""

    def __init__(self, spec, host, modules, lock, output):
        self.spec, self.host, self.modules = spec, host, modules
        self.lock, self.output = lock, output
        self.journal = Journal()
        self.armed = False

    def arm(self):
        directory = play_dir(self.spec["id"], self.spec.get("root"))
        owner = "%s (awaiting confirmation)" % self.lock.owner

        def hold(pid):
            return self.lock.add_holder(pid, owner)

        try:
            pid = arm(directory, self.spec["timeout"], self.journal, self.host, self.modules,
                      hold)  # fmt: skip
        except OSError as exc:
            raise ArmError("cannot arm the rollback timer: %s" % exc) from None
        self.armed = True
        self.output.emit({"armed": {"id": self.spec["id"], "pid": pid,
                                    "timeout": self.spec["timeout"]}})  # fmt: skip

    @property
    def explicit(self):
        """Asked for (--confirm-timeout): armed before the first task, and allowed to
        cut the management path. Otherwise armed only for a step that touches it."""
        return bool(self.spec.get("explicit", True))

    def ensure_armed(self):
        if not self.armed:
            self.arm()

    def record(self, task, module, facts):
        """The task's resource as it is now: what a rollback returns it to."""
        if self.explicit:
            self.ensure_armed()
        if hasattr(module, "run") or not hasattr(module, "read"):
            return  # not a resource (facts, overlay_probe): nothing to roll back
        try:
            params = self.host.normalize_params(module.ARGUMENT_SPEC, task["args"])
            before = module.read(params, facts)
        except Exception:  # noqa: BLE001 -- the task itself reports it when it runs
            return  # it fails before any change
        self.journal.record(task["index"], task["module"], params, before)


# ---- run by the controller over a NEW connection -------------------------------

CONFIRM_WAIT = 5.0  # seconds for the watchdog to see the confirmation and clean up


def confirm(directory):
    """Confirm the play: 'confirmed', or the rollback's result if it came first, or
    'gone' when there is nothing to confirm."""
    armed = os.path.join(directory, "armed")
    try:
        os.rename(armed, os.path.join(directory, "confirmed"))
    except OSError:
        return collect(directory)
    deadline = time.time() + CONFIRM_WAIT
    while os.path.exists(directory) and time.time() < deadline:
        time.sleep(POLL / 4)
    return {"confirmed": True, "cleaned": not os.path.exists(directory)}


def collect(directory, wait=0.0):
    import json  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    """The rollback's result (and the directory removed), waiting up to `wait` seconds
    for a rollback in progress; {"gone": True} when there is no such play."""
    result = os.path.join(directory, "result")
    deadline = time.time() + wait
    while not os.path.exists(result) and os.path.exists(directory) and time.time() < deadline:
        time.sleep(POLL)
    if not os.path.exists(directory):
        return {"gone": True}
    try:
        with open(result) as handle:
            data = json.load(handle)
    except OSError:
        return {"pending": True}
    shutil.rmtree(directory, ignore_errors=True)
    return data
