"""The program a host runs for one play: `python3 -I -S -c STUB`, the rest on stdin.

Line 1 of stdin is this program (read by STUB; under `sudo -S` a password line may come
first, which sudo consumes), line 2 the payload, two words (each marshal, zlib, base64):
the play's code (the rest of this program: the host lock, host_lock.py, and the play,
play.py; the host library and the modules the play needs), each as source and code
objects compiled by the controller (used when the bytecode magic matches), or, where
the controller knows this host's code cache holds it, as two digests (see _load); then
this host's own part: its task list, the check flag, how to take the host lock and
the commit-confirmed settings. Records stream back on stdout, one JSON object per line:

    {"need": "NAME ..."}          code the cache lacks (or holds altered): the controller
                                  answers with one line, [source, code] by NAME
    {"cached": {...}}             code kept in the cache this play (see _load)
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
Nothing is written to the host's disk but the code cache (CACHE_DIR, see Cache), the
lock files under /run/lock, commit confirmed's directory there (safe_apply), boot
configuration files (vnet_persist) and the port groups' libvirt hook (vnet_vm_attach,
as `file` steps), each whole or not at all. Runs on the host: Python 3.9+, standard library only.
"""

import _json
import _signal
import binascii
import marshal
import os
import select
import stat
import sys
import time

try:
    from _blake2 import blake2b  # built in: hashlib's import costs a play ~2 ms
except ImportError:  # a Python built without it
    from hashlib import blake2b

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
HOST_PROGRAM_LIBS = (HOST_LIB, "vnet_safety", "vnet_files")  # what it uses
CHECK_LIBS = ("vnet_upcoming",)  # and what it uses in check mode only
HOST_LOCK = "vnet_host_lock"  # the host lock's module (host_lock.py), installed first
HOST_PLAY = "vnet_play"  # the play itself (play.py), installed after the host library
CACHE_DIR = "/run/vnetctl/code"  # the code cache (see Cache); only root can make it
SOURCES = "src"  # the cache's directory of sources (beside one per bytecode magic)
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
    runs (vnet_attach: the hook libvirt runs). Installed from the code cache, the source
    is read from the cache when asked (`digest`: its name there), verified like the code."""

    def __init__(self, source, cache=None, digest=None):
        self.source, self._cache, self._digest = source, cache, digest

    def get_source(self, _name):
        if self.source is None and self._cache is not None:
            data = self._cache.read(SOURCES, self._digest)
            self.source = data.decode() if data is not None else None
        return self.source


def install(name, source, code=None, filename=None):
    """Make `source` importable as `name` (modules import vnet_host by that name). `code`:
    the compiled form (marshal, or a code object), used instead of compiling `source`;
    `source` may be a Source (the code cache's)."""
    module = type(sys)(name)
    module.__file__ = filename or "<vnetctl>/%s.py" % name
    module.__loader__ = source if isinstance(source, Source) else Source(source)
    sys.modules[name] = module  # as import does: the module can find itself while it runs
    try:
        compiled = marshal.loads(code) if isinstance(code, bytes) else code
        if compiled is None:
            compiled = compile(source, module.__file__, "exec")
        exec(compiled, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def digest(data):
    """What names `data` in the code cache: its BLAKE2b (128 bits), hex."""
    return blake2b(data, digest_size=16).hexdigest()


class Cache:
    """The host's code cache (CACHE_DIR): the compiled files of earlier plays (marshal
    for this Python's bytecode, a directory per magic) and their sources, each named by
    the digest of its content. A file is used only when its content has the digest the
    controller asked for: one missing, unreadable or altered is asked for again and
    replaced. Files are written whole (a temporary file renamed) or not at all, so a
    full disk leaves the cache as it was; a directory this user does not own alone
    (group- or world-writable, another owner, a link) turns the cache off."""

    def __init__(self, root, magic):
        self.root, self.magic = root, magic
        self.usable = bool(root) and all(self._owned(d) for d in (root, self.path(magic, "")))
        self.usable = self.usable and self._owned(self.path(SOURCES, ""))

    def path(self, kind, name):
        return os.path.join(self.root, kind, name)

    def _owned(self, path):
        path = path.rstrip("/")
        try:
            os.makedirs(path, 0o700, exist_ok=True)
            info = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() \
            and not info.st_mode & 0o022  # fmt: skip

    def read(self, kind, name):
        """The content of file `name` (a digest) if it still has that digest, else None."""
        if not self.usable or not name:
            return None
        try:
            fd = os.open(self.path(kind, name), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError:
            return None
        finally:
            os.close(fd)
        data = b"".join(chunks)
        return data if digest(data) == name else None

    def write(self, kind, data):
        """Store `data` under its digest; the digest, or None when it could not be."""
        if not self.usable:
            return None
        name = digest(data)
        tmp = self.path(kind, ".%s.%d" % (name, os.getpid()))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, self.path(kind, name))
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return None
        return name


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
        host, modules, cached = _load(payload, output)
        output.encode = sys.modules["vnet_core"].dumps
        if cached:  # the controller sends only their digests from now on
            output.emit({"cached": cached})
        lock = _take_lock(payload, stop, output)
    except Fatal as exc:
        output.emit({"fatal": str(exc), "stage": exc.stage})
        output.emit({"done": True, "stopped": False})
        return
    except Stopped:
        output.emit({"done": True, "stopped": True})
        return
    play = sys.modules[HOST_PLAY]
    try:
        stopped = play.run_play(host, modules, payload, output, stop, lock)
    except play.Fatal as exc:
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


def unpack(word):
    """One word of the payload (marshal, zlib, base64), as the controller packed it."""
    import zlib  # noqa: PLC0415 (a C module)

    return marshal.loads(zlib.decompress(binascii.a2b_base64(word)))


def _load(payload, output):
    """The rest of this program, the host library, the play's modules (and commit
    confirmed's watchdog), in the payload's order: `code`, {install name: entry}. An
    entry is [source, code]: the code (marshal) compiled by the controller for `magic`,
    used when this Python reads that bytecode, else the source is compiled here; both
    are then kept in the code cache. Or it is (source digest, code digest): the code
    cache holds it (verified); what it does not hold is asked for ({"need": names}, one
    line back on stdin, entries [source, code]). `sources`: the play's modules read
    their own sources (port groups write their hook's code), so those must be there
    too. Returns the host library, the modules by name, and what was cached:
    {"magic", "code": {source digest: code digest}}."""
    import _frozen_importlib_external  # noqa: PLC0415 (frozen, loaded at start-up)

    magic = _frozen_importlib_external.MAGIC_NUMBER.hex()
    # each library file tries `from ansible.module_utils import ...` first: a search of
    # sys.path per file (~0.5 ms a play), for a package -S leaves out of reach anyway
    sys.modules.setdefault("ansible", None)
    cache = Cache(payload.get("cache"), magic)  # None: no cache
    code, found = payload["code"], {}
    for name, entry in code.items():
        if isinstance(entry, tuple):
            data = cache.read(magic, entry[1])
            if data is not None and payload.get("sources") and \
                    cache.read(SOURCES, entry[0]) is None:  # fmt: skip
                data = None
            found[name] = data
    missing = [name for name, data in found.items() if data is None]
    if missing:
        output.emit({"need": " ".join(missing)})
        line = sys.stdin.readline()
        if not line.strip():  # EOF: the controller stopped
            raise Stopped()
        code = dict(code, **unpack(line.strip()))
    same, cached = payload.get("magic") == magic, {}
    try:
        for name, entry in code.items():
            if isinstance(entry, tuple):
                install(name, Source(None, cache, entry[0]), found[name])
                continue
            source, compiled = entry
            if not same or compiled is None:
                compiled = marshal.dumps(compile(source, "<vnetctl>/%s.py" % name, "exec"))
            install(name, source, compiled)
            kept = cache.write(SOURCES, source.encode())
            if kept and cache.write(magic, compiled):
                cached[kept] = digest(compiled)
    except Exception as exc:  # a module that does not even load: no task can run
        raise Fatal("loading modules", "a module failed to load: %r" % exc) from None
    modules = {name: sys.modules["vnet_module_" + name] for name in payload["modules"]}
    return sys.modules[HOST_LIB], modules, {"magic": magic, "code": cached} if cached else None


if __name__ == "__main__":
    # line 2: the play's code, then this host's own part (payload.build_stdin)
    _code, _own = sys.stdin.readline().split()
    _payload = unpack(_code)
    _payload.update(unpack(_own))
    # SSH_CONNECTION as the login shell saw it (before sudo): "CLIENT port SERVER port"
    _words = (sys.argv[1] if len(sys.argv) > 1 else "").split()
    _payload["client"], _payload["server"] = (_words[0], _words[2]) if len(_words) == 4 \
        else (None, None)  # fmt: skip
    run_tasks(_payload, sys.stdout, StopWatch(sys.stdin.fileno()))
