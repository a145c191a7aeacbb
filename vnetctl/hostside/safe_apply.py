"""Safe apply, on the host: the management-path guard, and commit confirmed (a play
applied under a rollback timer).

The guard (the host library's vnet_safety.Guard, consulted by the engine before any step
runs) refuses the steps that cut the path the controller's session arrived on unless a
rollback timer was asked for (--confirm-timeout), and has `Confirm` arm the timer
before the others. vnet_safety.preflight plans every task of the play on the facts before the
first change, so a play that would cut the host off is refused before anything on the
host changes.

Runs on the host (Python 3.9+, standard library only), shipped in the play's payload and
compiled only when a play arms it. Before the play's first change that needs it, the
host process forks the watchdog: a process in a session of its own, with no link to the
SSH session (stdin, stdout and stderr on /dev/null), so it survives the session dying.
It holds the state from before the play: a journal of (module, params, state before)
per task, and per task that wrote boot configuration files (vnet_persist) their content
before it: {"task", "files": [{"path", "before"}]} (None: no file). Each entry is on
disk before the change it covers, or that change is refused. The play's directory and
its files are vnetctl.hostside.confirm_files'.

Whichever of `confirmed` / `expired` is made first (both by renaming `armed`, which only
one rename can do) decides. On `confirmed` the watchdog removes the directory and exits;
on `expired` it undoes the journal in reverse with each module's own planner, re-reads,
writes `result` (into space reserved when it was armed) and exits. Whatever fails in it,
it writes a result that says so. The controller reads and removes `result` when it is
back, or a later run does.
"""

import os
import sys
import time

try:  # on the host the program installs it first; on the controller (tests), the package
    import vnet_confirm_files as files
except ImportError:
    from vnetctl.hostside import confirm_files as files

# shutil: imported where used; every apply play loads this file, but only a play that
# arms the timer (or a confirmation) removes its directory

STATE_ROOT = files.STATE_ROOT
play_dir = files.play_dir


def arm(directory, timeout, journal, host, modules, hold_lock=None, owner=""):
    """Fork the watchdog; returns its pid. The caller goes on with the play.
    `hold_lock(pid)` records the watchdog as a holder of the host lock (it shares the
    play's flock) and returns the file to remove when it is done. Raises OSError, with
    nothing left behind, when the directory, the reserve or the journal cannot be made."""
    os.makedirs(directory, mode=0o700)
    watching = None
    try:
        watching = files.hold(directory)
        files.reserve(directory)
        journal.attach(os.path.join(directory, "journal"))
        os.close(os.open(os.path.join(directory, "armed"), os.O_WRONLY | os.O_CREAT, 0o600))
        armed_at = time.time()
        pid = os.fork()
    except BaseException:
        import shutil  # noqa: PLC0415

        journal.path = None  # entries stay in memory, for another attempt
        if watching is not None:
            os.close(watching)
        shutil.rmtree(directory, ignore_errors=True)
        raise
    if pid:
        os.close(watching)  # the watchdog holds it now
        return pid
    holder = None
    try:  # the watchdog: cut every tie with the session, then wait
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if hold_lock is not None:
            holder = hold_lock(os.getpid())
        about = {"owner": owner, "armed_at": armed_at, "timeout": timeout}
        _watch(directory, armed_at + timeout, host, modules, about)
    except BaseException as exc:  # never silently: the result says what went wrong
        _failed(directory, exc, owner, armed_at)
    finally:
        if holder is not None:
            try:
                os.unlink(holder)
            except OSError:
                pass
        os._exit(0)


def _failed(directory, exc, owner, armed_at):
    try:
        files.write_result(directory, {
            "rolled_back": False, "left": [], "after_task": None, "owner": owner,
            "armed_at": armed_at, "at": time.time(),
            "problems": ["the watchdog failed: %s: %s" % (type(exc).__name__, exc)],
        })  # fmt: skip
    except BaseException:  # noqa: BLE001 -- nothing more can be said; collect says it died
        pass


def _watch(directory, deadline, host, modules, about):
    import shutil  # noqa: PLC0415

    armed, confirmed = os.path.join(directory, "armed"), os.path.join(directory, "confirmed")
    while time.time() < deadline:
        if os.path.exists(confirmed):
            shutil.rmtree(directory, ignore_errors=True)
            return
        if os.path.exists(os.path.join(directory, "expired")):
            break  # the controller asked for the rollback now
        time.sleep(files.POLL)
    else:
        try:
            os.rename(armed, os.path.join(directory, "expired"))
        except OSError:  # confirmed at the last moment, or the rollback asked for
            if os.path.exists(confirmed):
                shutil.rmtree(directory, ignore_errors=True)
                return
    entries, damaged = files.read_journal(directory)
    result = roll_back(entries, host, modules)
    if damaged:
        result["left"].append("%d journal entr%s did not check out: what %s held was not "
                              "rolled back" % (damaged, "y" if damaged == 1 else "ies",
                                               "it" if damaged == 1 else "they"))  # fmt: skip
        result["rolled_back"] = False
    result.update(about)
    files.write_result(directory, result)
    try:
        os.unlink(os.path.join(directory, "journal"))
    except OSError:
        pass


def roll_back(entries, host, modules):
    """Undo the journal's tasks, newest first, with each module's planner. Each task's
    resource is re-read right after its own undo and compared with its state before it:
    the later tasks are undone by then, so that is the state the host must be in. Two
    tasks of one resource thus each meet their own before-state, and when every one
    does, the host is as it was before the play. Files are compared at the end, each
    with the first state the journal recorded of it (a task's files may be journaled
    in two writes)."""
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
    checked = set()
    for entry in entries:
        for item in entry.get("files", ()):
            if item["path"] not in checked and _content(item["path"]) != item["before"]:
                left.append("%s: %s is not as it was" % (entry["task"], item["path"]))
            checked.add(item["path"])
    last = next((e for e in reversed(entries) if "module" in e), None)
    return {
        "rolled_back": not left,
        "left": left,
        "problems": problems,
        "after_task": entries[-1]["task"] if entries else None,
        "after_module": last["module"] if last else None,
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
        for c in host.diff_fields(entry["before"], now, every=True)
    ]


LINK = "symlink to "  # how vnet_persist gives a symbolic link's content


def _content(path):
    """A file's content, a symbolic link as LINK + its target, None when it is missing."""
    try:
        if os.path.islink(path):
            return LINK + os.readlink(path)
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return exc  # equal to no content: said as not restored


def _restore(entry):
    """The task's boot configuration files as they were: rewritten whole, or removed."""
    whole = sys.modules["vnet_files"]  # files written whole
    problems = []
    for item in entry["files"]:
        try:
            if item["before"] is None:
                if os.path.lexists(item["path"]):
                    os.unlink(item["path"])
                continue
            os.makedirs(os.path.dirname(item["path"]), exist_ok=True)
            if item["before"].startswith(LINK):  # an enable link
                whole.replace_files([], [(item["path"], item["before"][len(LINK) :])])
            else:
                whole.write_whole(item["path"], item["before"])
        except OSError as exc:
            problems.append("%s: %s: %s" % (entry["task"], item["path"], exc))
    return problems


# ---- the play's side: the journal, the guard ----------------------------------


class ArmError(Exception):
    """The rollback timer could not be armed: nothing that needs it may start."""


JournalError = files.JournalError


class Confirm:
    """Commit confirmed for one play: every task's state before it is journaled, and the
    watchdog armed before the first change (asked for) or before the first step that
    touches the management path (by itself)."""

    def __init__(self, spec, host, modules, lock, output):
        self.spec, self.host, self.modules = spec, host, modules
        self.lock, self.output = lock, output
        self.journal = files.Journal()
        self.armed = False

    def arm(self):
        directory = play_dir(self.spec["id"], self.spec.get("root"))
        owner = "%s (awaiting confirmation)" % self.lock.owner

        def hold(pid):
            return self.lock.add_holder(pid, owner)

        try:
            pid = arm(directory, self.spec["timeout"], self.journal, self.host, self.modules,
                      hold, self.lock.owner)  # fmt: skip
        except OSError as exc:
            raise ArmError(
                "cannot arm the rollback timer in %s (it needs %d KiB there): %s"
                % (directory, files.RESERVE // 1024 + 8, exc)
            ) from None
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

    def arm_for_step(self):
        """The guard's call before a step that touches the management path: a timer
        that cannot be armed refuses that step (the task fails, nothing changed)."""
        try:
            self.ensure_armed()
        except ArmError as exc:
            raise self.host.ModuleError("refused before any change: %s" % exc) from None

    def record(self, task, module, facts):
        """The task's resource as it is now: what a rollback returns it to. Raises
        ArmError or JournalError when that cannot be kept: the task must not run."""
        if self.explicit:
            self.ensure_armed()
        if hasattr(module, "run") or not hasattr(module, "read"):
            return  # not a resource (facts, overlay_probe): nothing to roll back
        try:
            params = self.host.checked_params(module, task["args"])
            before = module.read(params, facts)
        except Exception:  # noqa: BLE001 -- the task itself reports it when it runs
            return  # it fails before any change
        self.journal.record({"task": task["index"], "module": task["module"],
                             "params": params, "before": before})  # fmt: skip

    def files_journal(self, index, root):
        """For vnet_persist: boot configuration files a task is about to write or
        remove, as they are before it (JournalError: they are not written)."""

        def record(changes):
            paths = [{"path": os.path.join(root, c["path"]), "before": c["before"]}
                     for c in changes]  # fmt: skip
            self.journal.record({"task": index, "files": paths})

        return record
