"""The program a host runs for one play: `python3 -I -S -c STUB`, the rest on stdin.

Line 1 of stdin is this program (read by STUB; under `sudo -S` a password line may come
first, which sudo consumes), line 2 the payload, two words (each marshal, zlib, base64):
the play's code, alike on every host (the rest of this program: the host lock,
host_lock.py; the host library and the modules the play needs; each as source and as
code objects compiled by the controller, used when the bytecode magic matches), then
this host's own part: its task list, the check flag, how to take the host lock and
the commit-confirmed settings. Records stream back on stdout, one JSON object per line:

    {"waiting": "..."}            the host lock is held by another run; waiting for it
    {"start": INDEX}              a task begins
    {"index": INDEX, "result": R} a task ended (R: the module contract's result)
    {"fatal": MSG, "stage": S}    the play could not run at all (e.g. the lock)
    {"earlier": [R, ...]}         rollbacks of earlier plays no one collected (their
                                  controller was killed or lost the host), collected now
    {"armed": {...}}, {"refused": {...}}: commit confirmed, the guard (safe_apply)
    {"rescued": [INDEX, ...]}     a block's rescue ended well: those failures are cleared
    {"done": true, "stopped": B}  the end; stopped: asked to stop before the last task

The controller keeps stdin open for the whole play. EOF on stdin (the controller asked
to stop, or the session died) and SIGTERM/SIGHUP mean "stop": the task in flight ends
(applied, or rolled back), no further task starts, and the process exits; it never
outlives its session by more than one task. The controller writes one "+" on stdin for
each start record it receives; with `window` N in the payload a task starts only while
fewer than N started tasks are unacknowledged, so a controller that lost contact (no
EOF comes through a cut cable) knows which tasks may have begun: at most N after the
last start it saw. A host waiting ACK_WAIT seconds for an acknowledgement stops.
Nothing is written to the host's disk but the lock files under /run/lock, commit
confirmed's directory there (safe_apply), boot configuration files (vnet_persist) and
the port groups' libvirt hook (vnet_vm_attach, as `file` steps), each whole or not at
all. Runs on the host: Python 3.9+, standard library only.
"""

import _json
import _signal
import binascii
import marshal
import os
import select
import sys
import time

BOOT_MARK = "#vnetctl-boot"  # line 1 as sent: MARK MAGIC CODE SOURCE (see STUB)
# Line 1: the mark, the bytecode magic the controller compiled for, this program's code
# (marshal) and its source, each zlib and base64. The host runs the code when its Python
# has the same magic, else compiles the source: no json or re import before a line runs.
STUB = (
    "import sys,marshal as m,binascii as b,zlib as z,_frozen_importlib_external as e\n"
    "l=sys.stdin.readline()\n"
    "if not l.startswith('%s'):l=sys.stdin.readline()\n"
    "_,k,c,s=l.split()\n"
    "u=lambda x:z.decompress(b.a2b_base64(x))\n"
    "exec(m.loads(u(c))if k==e.MAGIC_NUMBER.hex()else u(s))" % BOOT_MARK
)
HOST_LIB = "vnet_host"
HOST_PROGRAM_LIBS = (HOST_LIB, "vnet_safety", "vnet_files")  # what this program uses
HOST_LOCK = "vnet_host_lock"  # the host lock's module (host_lock.py), installed first
CONDITIONS = "vnet_conditions"  # conditions on registered results (conditions.py)
ACK_WAIT = 30.0  # seconds without an acknowledgement from the controller: stop


class Fatal(Exception):
    def __init__(self, stage, msg):
        super().__init__(msg)
        self.stage = stage


class Stopped(Exception):
    """Asked to stop before the play's tasks began."""


class Source:
    """The loader of a module installed from its source: what it was installed from, for
    tracebacks (linecache asks `get_source`) and for what a module writes of the code it
    runs (vnet_attach: the hook libvirt runs)."""

    def __init__(self, source):
        self.source = source

    def get_source(self, _name):
        return self.source


def install(name, source, code=None, filename=None):
    """Make `source` importable as `name` (modules import vnet_host by that name). `code`:
    the controller's compiled form (marshal), used when this Python reads its magic."""
    module = type(sys)(name)
    module.__file__ = filename or "<vnetctl>/%s.py" % name
    module.__loader__ = Source(source)
    sys.modules[name] = module  # as import does: the module can find itself while it runs
    try:
        compiled = marshal.loads(code) if code is not None else None
        if compiled is None:
            compiled = compile(source, module.__file__, "exec")
        exec(compiled, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class Output:
    """Records to the controller; a closed stdout (controller gone) means stop. Until
    the host library is loaded only bare records can be written."""

    def __init__(self, out, stop):
        self._out, self._stop = out, stop
        self.encode = None  # the host library's dumps, once loaded

    def emit(self, record):
        if self.encode is not None:
            text = self.encode(record)
        else:  # {"fatal": text, ...}, {"done": bool}: before any library is loaded
            text = "{%s}" % ", ".join(
                "%s: %s" % (_json.encode_basestring_ascii(k), _bare(v)) for k, v in record.items()
            )
        try:
            self._out.write(text + "\n")
            self._out.flush()
        except (OSError, ValueError):
            self._stop.set()


def _bare(value):
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return _json.encode_basestring_ascii(str(value))


class StopWatch:
    """Asked to stop: stdin reached EOF (the controller stopped, was killed, or its
    session died), SIGTERM or SIGHUP arrived, or stdout closed. Polled between tasks and
    while waiting: no thread (the threading import alone costs every play ~1 ms)."""

    def __init__(self, fd=0):
        self._fd, self._stopped, self.acks = fd, False, 0
        for signum in (_signal.SIGTERM, _signal.SIGHUP):
            _signal.signal(signum, self._on_signal)

    def _on_signal(self, *_):
        self._stopped = True

    def set(self):
        self._stopped = True

    def is_set(self):
        return self.wait(0)

    def wait(self, seconds):
        """Up to `seconds`, returning early at EOF on stdin; True when stopped."""
        if self._stopped or self._fd is None:
            return self._stopped
        try:
            if select.select([self._fd], [], [], seconds)[0]:
                data = os.read(self._fd, 4096)
                self.acks += data.count(b"+")
                self._stopped = not data
        except OSError:
            self._stopped = True
        return self._stopped

    def may_start(self, started, window, patience=ACK_WAIT):
        """True once fewer than `window` of the `started` tasks are unacknowledged;
        False when stopped, or when no acknowledgement came for `patience` seconds."""
        deadline = time.monotonic() + patience
        while window and started - self.acks >= window:
            left = deadline - time.monotonic()
            if left <= 0 or self.wait(min(left, 1.0)):
                return False
        return not self.is_set()


# ---- the play -----------------------------------------------------------------


def run_tasks(payload, out, stop):
    output = Output(out, stop)
    try:
        host, modules = _load(payload)
        output.encode = sys.modules["vnet_core"].dumps
        lock = _take_lock(payload, stop, output)
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


def _take_lock(payload, stop, output):
    """The host lock, as the payload asks for it (see host_lock.py)."""
    locking = sys.modules[HOST_LOCK]
    try:
        return locking.take_lock(payload.get("lock") or {}, payload["check"], stop, output)
    except locking.LockFailed as exc:
        raise Fatal("lock", str(exc)) from None
    except locking.Stopped:
        raise Stopped() from None


def same_magic(payload):
    """The controller compiled for this Python: its code objects can run here."""
    import _frozen_importlib_external  # noqa: PLC0415 (frozen, loaded at start-up)

    return payload.get("magic") == _frozen_importlib_external.MAGIC_NUMBER.hex()


def _load(payload):
    """The rest of this program (the host lock), the host library, then the play's
    modules: each as the controller compiled it (marshal) when this Python reads its
    bytecode, else compiled here from source."""
    compiled = same_magic(payload)
    try:
        for name, (source, code) in payload["program"].items():
            install(name, source, code if compiled else None)
        for name, (source, code) in payload["libs"].items():  # vnet_host comes last
            install(name, source, code if compiled else None)
        modules = {
            name: install("vnet_module_" + name, source, code if compiled else None)
            for name, (source, code) in payload["modules"].items()
        }
    except Exception as exc:  # a module that does not even load: no task can run
        raise Fatal("loading modules", "a module failed to load: %r" % exc) from None
    return sys.modules[HOST_LIB], modules


def _run_play(host, modules, payload, output, stop, lock):
    facts = host.Facts.gather(modules=list(modules.values()))
    confirm, guard = None, None
    safety = sys.modules.get("vnet_safety")  # the management-path guard (host library)
    server, client = payload.get("server"), payload.get("client")
    if not payload["check"] and payload.get("confirm"):  # see vnetctl/hostside/safe_apply.py
        for name, (source, code) in payload["watchdog"].items():  # its files, then itself
            safe = install(name, source, code if same_magic(payload) else None)
        if lock.mode != "borrowed":  # the lock's holder collects what earlier runs left
            earlier = sys.modules["vnet_confirm_files"].leftovers(payload["confirm"].get("root"))
            if earlier:
                output.emit({"earlier": earlier})
        confirm = safe.Confirm(payload["confirm"], host, modules, lock, output)
        guard = safety.Guard(server, confirm.arm_for_step, confirm.explicit, host.ModuleError,
                             client)  # fmt: skip
    elif safety is not None:  # check mode: classified and refused as the real run would
        explicit = bool((payload.get("confirm") or {}).get("explicit"))
        guard = safety.Guard(server, None, explicit, host.ModuleError, client, check=True)
    planned = [t for t in payload["tasks"] if t["module"] in modules and "result" not in t]
    for task in planned:  # arguments checked once, for every reader below
        try:
            task["args"] = host.checked_params(modules[task["module"]], task["args"])
        except host.ModuleError:
            pass  # the task says so when it runs
    # under a rollback timer nothing is refused (drift, too, only compares)
    guarded = guard is not None and not guard.explicit
    refused = safety.preflight(host, modules, planned, facts, guard) if guarded else None
    if refused is not None:  # before any change: the play does not start on this host
        index, msg, found = refused
        output.emit({"refused": {"index": index, "msg": msg, "management_path": found}})
        return False
    persist = sys.modules.get("vnet_persist")  # boot persistence (host library)
    persisting = persist.configure(payload.get("persist")) if persist is not None else None
    failed_at, started, registered = None, 0, {}
    conditions = sys.modules.get(CONDITIONS)  # shipped for plays that need it (payload.py)
    blocks = conditions.Blocks() if conditions is not None else None
    for task in payload["tasks"]:
        if stop.is_set():
            return True
        if blocks is not None:
            failed_at = _rescued(blocks.leave(task), output, failed_at)
        skip = (
            blocks.skip(task, failed_at)
            if blocks is not None
            else (None if failed_at is None else "skipped: an earlier task failed on this host")
        )
        if skip is not None:
            result = {"skipped": True, "changed": False, "failed": False, "msg": skip}
            if failed_at is not None and (blocks is None or blocks.failing is None):
                result["skipped_after"] = failed_at
        else:
            if not stop.may_start(started, payload.get("window")):
                return True
            started += 1
            output.emit({"start": task["index"]})
            journal = None
            result = conditions.decided(task, registered) if conditions else task.get("result")
            if result is not None:
                pass  # a verb the controller ran, or a task its `when` skips here
            elif confirm is not None:
                try:
                    confirm.record(task, modules[task["module"]], facts)
                except safe.ArmError as exc:  # asked for: armed before the first change
                    raise Fatal("confirm", "refused before any change: %s" % exc) from None
                except safe.JournalError as exc:
                    result = {"changed": False, "failed": True,
                              "msg": "refused before any change: %s" % exc}  # fmt: skip
                    output.emit({"index": task["index"], "result": result})
                    failed_at = task["index"]
                    continue
                if persisting is not None:  # a rollback restores the task's files too
                    journal = confirm.files_journal(task["index"], persisting[0]["root"])
            if result is None:
                result = _run_one(host, modules[task["module"]], task, payload["check"], facts,
                                  guard, persisting, journal)  # fmt: skip
                if conditions is not None:
                    conditions.judged(task, result, registered)
            if task.get("register"):
                _register(registered, task, result)
            if result.get("failed") and blocks is not None:
                blocks.failed(task)
            if result.get("failed"):
                failed_at = task["index"] if failed_at is None else failed_at
        output.emit({"index": task["index"], "result": result})
    if blocks is not None:
        _rescued(blocks.leave({}), output, failed_at)
    return False


def _register(registered, task, result):
    """A task's result under its register name; a loop's items under `results`."""
    name, loop = task["register"], task.get("loop_of")
    if loop is None:
        registered[name] = result
        return
    kept = registered.get(name)
    if not (isinstance(kept, dict) and kept.get("_loop") == loop):  # the loop's first item
        kept = registered[name] = {"results": [], "changed": False, "failed": False,
                                   "skipped": False, "_loop": loop}  # fmt: skip
    kept["results"].append(result)
    kept["changed"] = kept["changed"] or bool(result.get("changed"))
    kept["failed"] = kept["failed"] or bool(result.get("failed"))


def _rescued(indexes, output, failed_at):
    """A block's rescue ended well: its failures are cleared, the play goes on."""
    if not indexes:
        return failed_at
    output.emit({"rescued": indexes})
    return None


def _run_one(host, module, task, check, facts, guard=None, persisting=None, journal=None):
    try:
        params = host.checked_params(module, task["args"])  # checked: as it is
        result = host.execute(module, params, check, facts, guard=guard)
        if persisting is not None and hasattr(module, "persist") and not result.get("failed"):
            sys.modules["vnet_persist"].after_task(module, params, result, check, facts,
                                                   persisting, journal)  # fmt: skip
            if result.get("failed") and result.get("changes") and not check:
                # its files could not be written (none were): the task is undone whole
                result["msg"] += host.roll_back(module, params, result["diff"]["before"], facts)
        return result
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
    import zlib  # noqa: PLC0415 (a C module)

    # line 2: the play's code, then this host's own part (payload.build_stdin)
    _code, _own = sys.stdin.readline().split()
    _payload = marshal.loads(zlib.decompress(binascii.a2b_base64(_code)))
    _payload.update(marshal.loads(zlib.decompress(binascii.a2b_base64(_own))))
    # SSH_CONNECTION as the login shell saw it (before sudo): "CLIENT port SERVER port"
    _words = (sys.argv[1] if len(sys.argv) > 1 else "").split()
    _payload["client"], _payload["server"] = (_words[0], _words[2]) if len(_words) == 4 \
        else (None, None)  # fmt: skip
    run_tasks(_payload, sys.stdout, StopWatch(sys.stdin.fileno()))
