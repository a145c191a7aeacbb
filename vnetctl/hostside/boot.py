"""The program a host runs for one play: `python3 -I -S -c STUB`, the rest on stdin.

Line 1 of stdin is this file's source (read by STUB; under `sudo -S` a password line
may come first, which sudo consumes), line 2 the payload: the module sources the play
needs, its task list, the check flag and how to take the host lock. Records stream back
on stdout, one JSON object per line:

    {"waiting": "..."}            the host lock is held by another run; waiting for it
    {"start": INDEX}              a task begins
    {"index": INDEX, "result": R} a task ended (R: the module contract's result)
    {"fatal": MSG, "stage": S}    the play could not run at all (e.g. the lock)
    {"done": true, "stopped": B}  the end; stopped: asked to stop before the last task

The controller keeps stdin open for the whole play. EOF on stdin (the controller asked
to stop, or the session died) and SIGTERM/SIGHUP mean "stop": the task in flight ends
(applied, or rolled back), no further task starts, and the process exits; it never
outlives its session by more than one task. Nothing is written to the host's disk but
the lock files under /run/lock. Runs on the host: Python 3.9+, standard library only.
"""

import contextlib
import json
import os
import signal
import sys
import threading
import time
import types

BOOT_MARK = "#vnetctl-boot"  # the first line of the boot source as sent
STUB = (
    "import sys,json\n"
    "l=sys.stdin.readline()\n"
    "if not l.startswith('\"%s'):l=sys.stdin.readline()\n"
    "exec(json.loads(l))" % BOOT_MARK
)
HOST_LIB = "vnet_host"
LOCK_DIRS = ("/run/lock", "/var/lock", "/tmp")
LOCK_FILE = "vnetctl.lock"
LOCK_POLL = 0.1  # seconds between attempts while another run holds the lock


class Fatal(Exception):
    def __init__(self, stage, msg):
        super().__init__(msg)
        self.stage = stage


class Stopped(Exception):
    """Asked to stop before the play's tasks began."""


def install(name, source, filename=None):
    """Make `source` importable as `name` (modules import vnet_host by that name)."""
    module = types.ModuleType(name)
    module.__file__ = filename or "<vnetctl>/%s.py" % name
    sys.modules[name] = module  # as import does: the module can find itself while it runs
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class Output:
    """Records to the controller; a closed stdout (controller gone) means stop."""

    def __init__(self, out, stop):
        self._out, self._stop = out, stop

    def emit(self, record):
        try:
            self._out.write(json.dumps(record, default=str) + "\n")
            self._out.flush()
        except (OSError, ValueError):
            self._stop.set()


def watch_for_stop(stdin):
    """Set when stdin reaches EOF or SIGTERM/SIGHUP arrives."""
    stop = threading.Event()

    def read_to_eof():
        try:
            while stdin.read(4096):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    threading.Thread(target=read_to_eof, daemon=True).start()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    return stop


# ---- the host lock ------------------------------------------------------------


def _lock_dir(asked=None):
    for path in [asked] if asked else LOCK_DIRS:
        if os.path.isdir(path) and os.access(path, os.W_OK):
            return path
    raise Fatal("lock", "no writable directory for the host lock in %s" % ", ".join(LOCK_DIRS))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holders(directory):
    """Who holds the lock: one small file per holder, named by its pid."""
    found = []
    for name in sorted(os.listdir(directory)):
        if not (name.startswith(LOCK_FILE + ".") and name.endswith(".holder")):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path) as handle:
                info = json.load(handle)
        except (OSError, ValueError):
            continue
        if _alive(int(info.get("pid", 0))):
            found.append(info)
        else:  # its process died without cleaning up; the kernel released its lock
            with contextlib.suppress(OSError):
                os.unlink(path)
    return found


def _describe_holders(holders):
    if not holders:
        return "another vnetctl run"
    return "; ".join(
        "%s (%s, since %s, pid %s)"
        % (
            h.get("owner") or "a vnetctl run",
            h.get("mode"),
            time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(h.get("since", 0))),
            h.get("pid"),
        )
        for h in holders
    )


def _open_lock_file(path):
    """Read-only is enough for flock, and lets users who share the lock open it. No
    O_CREAT on an existing file: in a sticky world-writable directory such as /run/lock
    the kernel (fs.protected_regular) refuses that for a file someone else owns."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)


def _try_flock(fcntl, fd, operation):
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    return True


def take_lock(spec, check, stop, output):
    """flock: exclusive to apply, shared to check. Returns the HostLock."""
    import fcntl  # noqa: PLC0415 (only where a lock is asked for)

    mode = spec.get("mode") or ("shared" if check else "exclusive")
    wait = float(spec.get("wait", 60))
    directory = _lock_dir(spec.get("dir"))
    fd = _open_lock_file(os.path.join(directory, LOCK_FILE))
    operation = (fcntl.LOCK_SH if mode == "shared" else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + wait
    announced = False
    while not _try_flock(fcntl, fd, operation):
        if stop.is_set():
            os.close(fd)
            raise Stopped()
        who = _describe_holders(_holders(directory))
        if time.monotonic() >= deadline:
            os.close(fd)
            raise Fatal("lock", "host lock held by %s; gave up after %g s" % (who, wait))
        if not announced:
            output.emit({"waiting": "host lock held by %s" % who})
            announced = True
        stop.wait(LOCK_POLL)
    return HostLock(fd, directory, mode, spec.get("owner", ""))


class HostLock:
    """The flock held for the play, and the holder files that say who holds it: the
    play's process, and its watchdog while a commit-confirmed play awaits confirmation
    (a forked watchdog shares the lock, so it stays held until it is done)."""

    def __init__(self, fd, directory, mode, owner):
        self.fd, self.directory, self.mode, self.owner = fd, directory, mode, owner
        self.mine = self.add_holder(os.getpid(), owner)

    def add_holder(self, pid, owner):
        path = os.path.join(self.directory, "%s.%d.holder" % (LOCK_FILE, pid))
        info = {"pid": pid, "mode": self.mode, "since": time.time(), "owner": owner}
        with open(path, "w") as handle:
            json.dump(info, handle)
        return path

    def release(self):
        with contextlib.suppress(OSError):
            os.unlink(self.mine)
        os.close(self.fd)


# ---- the play -----------------------------------------------------------------


def run_tasks(payload, out, stop):
    output = Output(out, stop)
    try:
        host, modules = _load(payload)
        lock = take_lock(payload.get("lock") or {}, payload["check"], stop, output)
    except Fatal as exc:
        output.emit({"fatal": str(exc), "stage": exc.stage})
        output.emit({"done": True, "stopped": False})
        return
    except Stopped:
        output.emit({"done": True, "stopped": True})
        return
    try:
        stopped = _run_play(host, modules, payload, output, stop, lock)
    except Fatal as exc:
        output.emit({"fatal": str(exc), "stage": exc.stage})
        stopped = False
    finally:
        lock.release()
    output.emit({"done": True, "stopped": stopped})


def _load(payload):
    try:
        for name, source in payload["libs"].items():  # vnet_host comes last
            install(name, source)
        modules = {
            name: install("vnet_module_" + name, source)
            for name, source in payload["modules"].items()
        }
    except Exception as exc:  # a module that does not even load: no task can run
        raise Fatal("loading modules", "a module failed to load: %r" % exc) from None
    return sys.modules[HOST_LIB], modules


def _run_play(host, modules, payload, output, stop, lock):
    facts = host.Facts.gather(modules=list(modules.values()))
    confirm, guard = None, None
    safety = sys.modules.get("vnet_safety")  # the management-path guard (host library)
    if not payload["check"] and payload.get("confirm"):  # see vnetctl/hostside/safe_apply.py
        safe = install("vnet_safe_apply", payload["confirm"]["source"])
        confirm = safe.Confirm(payload["confirm"], host, modules, lock, output)
        guard = safety.Guard(payload.get("server"), confirm.ensure_armed, confirm.explicit,
                             host.ModuleError)  # fmt: skip
        refused = safe.preflight(host, modules, payload["tasks"], facts, guard)
        if refused is not None:
            output.emit({"refused": {"index": refused[0], "msg": refused[1]}})
            return False
    elif safety is not None:  # check mode: the steps are classified, nothing armed
        guard = safety.Guard(payload.get("server"), error=host.ModuleError)
    failed_at = None
    for task in payload["tasks"]:
        if stop.is_set():
            return True
        if failed_at is not None:
            result = {
                "skipped": True,
                "changed": False,
                "failed": False,
                "skipped_after": failed_at,
                "msg": "skipped: an earlier task failed on this host",
            }
        else:
            output.emit({"start": task["index"]})
            if confirm is not None:
                try:
                    confirm.record(task, modules[task["module"]], facts)
                except safe.ArmError as exc:
                    raise Fatal("confirm", str(exc)) from None
            result = _run_one(host, modules[task["module"]], task, payload["check"], facts, guard)
            if result.get("failed"):
                failed_at = task["index"]
        output.emit({"index": task["index"], "result": result})
    return False


def _run_one(host, module, task, check, facts, guard=None):
    try:
        params = host.normalize_params(module.ARGUMENT_SPEC, task["args"])
        return host.execute(module, params, check, facts, guard=guard)
    except host.ModuleError as exc:
        return {"changed": False, "failed": True, "msg": str(exc)}
    except Exception:  # a module bug must not hide the other tasks' results
        import traceback  # noqa: PLC0415 (its import costs each host ~4 ms of start-up)

        return {
            "changed": False,
            "failed": True,
            "msg": "module crashed:\n" + traceback.format_exc(limit=5),
        }


if __name__ == "__main__":
    _payload = json.loads(sys.stdin.readline())
    # SSH_CONNECTION as the login shell saw it (before sudo): "client port SERVER port"
    _words = (sys.argv[1] if len(sys.argv) > 1 else "").split()
    _payload["server"] = _words[2] if len(_words) == 4 else None
    run_tasks(_payload, sys.stdout, watch_for_stop(sys.stdin))
