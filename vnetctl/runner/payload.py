"""What goes down a host's stdin for one play, and the command that reads it."""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import importlib.util
import json
import marshal
import re
import shlex
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vnetctl.catalog import Catalog
from vnetctl.hostlib import compiled
from vnetctl.hostside import boot, conditions, confirm_files, host_lock, play, safe_apply
from vnetctl.runner.host_code import HostCode
from vnetctl.transport.base import ConnectionLost

if TYPE_CHECKING:
    from vnetctl.transport.base import RemoteProcess

BOOT_SOURCE = Path(boot.__file__).read_text()
HOST_LOCK_SOURCE = Path(host_lock.__file__).read_text()
PLAY_SOURCE = Path(play.__file__).read_text()
CONDITIONS_SOURCE = Path(conditions.__file__).read_text()
# hosts whose Python reads this bytecode run the controller's code objects: compiling
# the pushed sources was ~7 ms of every host's play
MAGIC = importlib.util.MAGIC_NUMBER.hex()


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode()


def digest(data: bytes) -> str:
    """A file's name in a host's code cache (boot.digest)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@lru_cache(maxsize=2)
def boot_line(with_code: bool = True) -> str:
    """Line 1 for the STUB: mark, magic, this program as code and as source; without
    the code ('-') for a host known to read another bytecode."""
    # sent with every play: without docstrings (-OO), which nothing in it reads
    code = _b64(zlib.compress(compiled(BOOT_SOURCE, "<vnetctl>/boot.py", 2), 9))
    magic = MAGIC if with_code else "-"
    return f"{boot.BOOT_MARK} {magic} {code if with_code else '-'} " \
        f"{_b64(zlib.compress(BOOT_SOURCE.encode(), 9))}"  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One file of a play's code: installed as `name` on the host."""

    name: str
    source: str
    code: bytes  # compiled here, for MAGIC
    source_digest: str
    code_digest: str  # of `code`: what a host reading MAGIC keeps in its cache


@lru_cache(maxsize=256)
def _entry(name: str, source: str) -> Entry:
    # without docstrings (-OO: host code has no assert and reads no __doc__, see
    # test_host_cpu): ~15% fewer bytes for every host to read, check and unmarshal
    code = compiled(source, f"<vnetctl>/{name}.py", 2)
    return Entry(name, source, code, digest(source.encode()), digest(code))


# -I: neither PYTHON* variables nor a json.py in the login directory can change what
# runs; -S: no site-packages (the host side is standard library only) and ~5 ms less
# start-up per host, which a 2-core controller hosting a 100-host lab feels.
INTERPRETER_FLAGS = ["-I", "-S"]


DECLARES_FACTS = re.compile(r"^FACTS\s*=", re.MULTILINE)
SAFE_APPLY_SOURCE = Path(safe_apply.__file__).read_text()
CONFIRM_FILES_SOURCE = Path(confirm_files.__file__).read_text()


@dataclass(frozen=True)
class ConfirmSpec:
    """A play applied under a rollback timer (see vnetctl.hostside.safe_apply)."""

    play_id: str  # names the play's directory on the host
    timeout: float  # seconds from arming to the automatic rollback
    root: str | None = None  # None: the host's /run/lock (tests use their own)
    # asked for (--confirm-timeout): armed at the first task, and management-path cuts
    # allowed; otherwise armed only before a step that touches the management path
    explicit: bool = True

    @property
    def directory(self) -> str:
        return confirm_files.play_dir(self.play_id, self.root)


@dataclass(frozen=True)
class LockSpec:
    """How the host process takes the host lock (see boot.take_lock)."""

    wait: float = 60.0  # seconds to wait for another run to finish
    owner: str = ""  # who we are, shown to a run that finds the lock taken
    directory: str | None = None  # None: the host's /run/lock (tests use their own)
    # this run's watchdog on the host holds the lock already (see RunOptions.borrowed_locks)
    borrowed: bool = False


TASK_EXTRAS = ("result", "host_when", "register", "changed_when", "failed_when", "block",
               "loop_of")  # fmt: skip
CONDITIONAL = ("host_when", "changed_when", "failed_when", "block")  # need conditions.py


def task_record(task) -> dict:
    """What the host's process is given for a planned task (vnetctl/hostside/play.py):
    a verb the controller ran (debug, assert, ...) carries its result, not arguments;
    conditions on registered results, register and block go with the task."""
    result = getattr(task, "result", None)
    out = {"index": task.index, "module": task.module, "args": {} if result else task.args}
    for key in TASK_EXTRAS:
        if getattr(task, key, None) is not None:
            out[key] = getattr(task, key)
    return out


def _sudo(become_user: str, become_password: bool) -> list[str]:
    """Without a become password, sudo -n fails fast instead of prompting; with one,
    sudo -S reads it as the first line of stdin."""
    sudo = ["sudo", "-S", "-p", ""] if become_password else ["sudo", "-n"]
    return [*sudo, "-H", "-u", become_user, "--"]


def remote_command(
    python: str, become: bool = False, become_user: str = "root", become_password: bool = False
) -> str:
    """The one process a host runs per play. `python` may carry words of its own, as
    Ansible allows ('/usr/bin/env python3').

    The login shell prints its PID and execs the interpreter (or sudo) in its place:
    that PID leads the process group sshd made for the session, which the controller
    can end with `kill_command` if the process hangs (OpenSSH's sshd refuses SSH
    "signal" requests in many setups, root logins among them)."""
    argv = [*shlex.split(python), *INTERPRETER_FLAGS, "-c", boot.STUB]
    if become:
        argv = [*_sudo(become_user, become_password), *argv]
    # "$SSH_CONNECTION" expanded by the login shell, before sudo resets the environment:
    # the address the session arrived on, which names the host's management path
    return "echo $$; exec " + shlex.join(argv) + ' "$SSH_CONNECTION"'


def kill_command(
    pid: int, signal: str, become: bool = False, become_user: str = "root",
    become_password: bool = False,
) -> str:  # fmt: skip
    """Send `signal` to the process group of a play's remote process (see remote_command)."""
    argv = ["kill", f"-{signal}", "--", f"-{int(pid)}"]
    if become:
        argv = [*_sudo(become_user, become_password), *argv]
    return shlex.join(argv)


def build_stdin(
    catalog: Catalog,
    tasks: Sequence[dict],
    check: bool,
    lock: LockSpec | None = None,
    become_password: str | None = None,
    confirm: ConfirmSpec | None = None,
    persist: dict | None = None,
    window: int | None = None,
    known: HostCode | None = None,
    trace: bool = False,
) -> str:
    """tasks: [{"index", "module", "args"}]; only the modules they use are sent.
    `persist`: {"mode": networkd | none | None (detected), "root"} (see vnet_persist).
    `confirm` in check mode arms nothing: it tells the guard whether the real run may
    cut the management path under a rollback timer (`explicit`).
    `window`: the host starts a task only while fewer than this many started tasks are
    unacknowledged by the controller (boot.py); None: no acknowledgements are sent.
    `known`: what the controller knows of this host's code cache (None: nothing).
    `trace`: each result says the commands its task ran (`ran`: `run -vvv`).

    Line 2 is two words: the code (host library, modules, the watchdog when a rollback
    timer is asked for; what the host's cache holds as digests only), packed once per
    run for every host that knows the same, and what is this host's own (tasks, check,
    lock, confirm and persist settings)."""
    lock = lock or LockSpec()
    known = known or HostCode(cache=None)  # nothing known: no cache either
    modules = frozenset(t["module"] for t in tasks if "result" not in t)  # verbs: no module
    conditions = any(key in t for t in tasks for key in CONDITIONAL) or any(
        "that_on_host" in (t.get("result") or {}) for t in tasks)  # fmt: skip
    every_source = any(t["module"] == "facts" and t["args"].get("sources") == "all" for t in tasks)
    code = _code_word(catalog, modules, every_source, confirm is not None and not check, known,
                      conditions, check)  # fmt: skip
    own = {
        "tasks": list(tasks),
        "check": check,
        "lock": {
            "wait": lock.wait,
            "owner": lock.owner,
            "dir": lock.directory,
            "borrowed": lock.borrowed,
        },
        "persist": persist or {},
        "window": window,
        "trace": trace,
    }
    own["cache"] = known.cache
    if confirm is not None:
        own["confirm"] = {
            "id": confirm.play_id, "timeout": confirm.timeout, "root": confirm.root,
            "explicit": confirm.explicit,
        }  # fmt: skip
    password = become_password + "\n" if become_password is not None else ""
    line1 = boot_line(known.magic in (None, MAGIC))
    return f"{password}{line1}\n{code} {_pack(own)}\n"


def _pack(value: dict) -> str:
    return _b64(zlib.compress(marshal.dumps(value), 6))  # sources and code: ~4x smaller


def unpack(line: str) -> dict:
    """Line 2 read back, as the host reads it (boot.py's main): the code, then the host's own."""
    payload = {}
    for word in line.split():
        payload.update(marshal.loads(zlib.decompress(binascii.a2b_base64(word))))
    return payload


def _entries(
    catalog: Catalog,
    modules: frozenset[str],
    every_source: bool,
    watchdog: bool,
    conditions: bool,
    check: bool = False,
) -> tuple[tuple[str, ...], tuple[Entry, ...]]:
    """The module names, and the play's code in the order a host installs it
    (boot._load): the rest of the host's program, the host library (vnet_host last),
    the modules, the watchdog; `conditions`: the conditions on registered results and
    blocks (conditions.py), for the plays that have them; `check`: what check mode
    adds (boot.CHECK_LIBS: what later tasks would see of earlier ones)."""
    key = (modules, every_source, watchdog, conditions, check)
    if key not in catalog.code_entries:
        needed = set(modules)
        if every_source:  # `facts: {sources: all}` reports every module's FACTS: those
            # modules are found by their source, not by loading the ones the play skips
            needed |= {n for n in catalog if DECLARES_FACTS.search(catalog.source(n))}
        names = sorted(needed)
        found = [_entry(boot.HOST_LOCK, HOST_LOCK_SOURCE), _entry(boot.HOST_PLAY, PLAY_SOURCE)]
        extra = boot.CHECK_LIBS if check else ()
        found += [_entry(n, src) for n, src in catalog.host_lib_sources(names, extra).items()]
        found += [_entry("vnet_module_" + n, catalog.source(n)) for n in names]
        if conditions:  # a play with conditions on registered results, or blocks
            found.insert(2, _entry(play.CONDITIONS, CONDITIONS_SOURCE))
        if watchdog:  # installed in this order: the watchdog imports its files' module
            found += [_entry("vnet_confirm_files", CONFIRM_FILES_SOURCE),
                      _entry("vnet_safe_apply", SAFE_APPLY_SOURCE)]  # fmt: skip
        catalog.code_entries[key] = (tuple(names), tuple(found))
    return catalog.code_entries[key]


def _code_word(
    catalog: Catalog, modules: frozenset[str], every_source: bool, watchdog: bool,
    known: HostCode, conditions: bool = False, check: bool = False,
) -> str:  # fmt: skip
    """Packed once per catalog, module set and what hosts' caches hold: packing it per
    host was 40 ms (zlib), 2 s of controller CPU for a 50-host play, for bytes that are
    all alike."""
    names, entries = _entries(catalog, modules, every_source, watchdog, conditions, check)
    # a known other bytecode: the host compiles the source, our code would be dead weight
    ours = known.magic in (None, MAGIC)
    shape = tuple(known.code.get(e.source_digest, ours) for e in entries)
    key = (names, watchdog, conditions, check, shape)
    cache = catalog.packed_code
    if key not in cache:
        code = {
            e.name: (e.source_digest, held) if isinstance(held, str)
            else [e.source, e.code if held else None]
            for e, held in zip(entries, shape, strict=True)
        }  # fmt: skip
        cache[key] = _pack({
            "magic": MAGIC,
            "code": code,
            "modules": list(names),
            # port groups write their hook's code from the sources they were loaded from
            "sources": any(e.name == "vnet_vm_attach" for e in entries),
        })  # fmt: skip
    return cache[key]


def _sent(catalog: Catalog) -> dict[str, Entry]:
    return {e.name: e for _, found in catalog.code_entries.values() for e in found}


def missing_line(catalog: Catalog, names: Sequence[str]) -> str:
    """The answer to a host's {"need": names}: [source, code] by name, one line."""
    entries = _sent(catalog)
    return _pack({n: [entries[n].source, entries[n].code] for n in names if n in entries}) + "\n"


async def answer(process: RemoteProcess, play: Any, catalog: Catalog, known: HostCode) -> bool:
    """A host's records about its code cache (`play`: its HostPlay): what it lacks is
    sent whole (and known no longer held there), what it kept is learnt. True when
    `known` learnt something."""
    if play.need:
        entries = _sent(catalog)
        known.forget({entries[n].source_digest for n in play.need if n in entries})
        # stdin closed since (a stop asked for): the host reads EOF and stops; a connection
        # that died, the next readline says so
        with contextlib.suppress(ConnectionLost):
            await process.write(missing_line(catalog, play.need))
        play.need = []
    learnt = play.cached is not None and known.learn(play.cached)
    play.cached = None
    return learnt


# run over a NEW connection: it proves the host can still be reached, then acts
CONFIRM_STUB = (
    "import sys,json;exec(json.loads(sys.stdin.readline()));a=sys.argv[2];"
    "print(json.dumps(confirm(sys.argv[1]) if a=='confirm' else "
    "abort(sys.argv[1], float(sys.argv[3])) if a=='abort' else "
    "collect(sys.argv[1], float(sys.argv[3]))))"
)


def confirm_command(python: str, directory: str, action: str, wait: float = 0.0,
                    become: bool = False, become_user: str = "root",
                    become_password: bool = False) -> str:  # fmt: skip
    """`action`: 'confirm' (the play stands), 'abort' (roll it back now) or 'collect'
    (read a rollback's result); the last two wait up to `wait` seconds for a rollback in
    progress. Prints one JSON object; stdin carries the code of the play's directory
    (vnetctl.hostside.confirm_files), after the become password, if any."""
    argv = [*shlex.split(python), *INTERPRETER_FLAGS, "-c", CONFIRM_STUB, directory, action,
            str(wait)]  # fmt: skip
    if become:
        argv = [*_sudo(become_user, become_password), *argv]
    return shlex.join(argv)


def confirm_stdin(become_password: str | None = None) -> str:
    password = become_password + "\n" if become_password is not None else ""
    return password + json.dumps(CONFIRM_FILES_SOURCE) + "\n"
