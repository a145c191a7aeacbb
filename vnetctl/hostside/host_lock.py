"""The host lock, on the host: one vnetctl run applies on a host at a time (an
exclusive flock), check runs share it (a shared flock), and a run that finds it held
waits, saying who holds it, up to its `wait`. Who holds it is said by one small file per
holder beside the lock file (pid, mode, since when, owner), written whole or not at all.

Part of the program a host runs for a play (boot.py), shipped with it in the play's
payload and installed as `vnet_host_lock` before the lock is taken; it uses the host
library's JSON (vnet_core) and whole-file writer (vnet_files), loaded by then. Runs on the host:
Python 3.9+, standard library only.
"""

import os
import sys
import time

LOCK_DIRS = ("/run/lock", "/var/lock", "/tmp")
LOCK_FILE = "vnetctl.lock"
LOCK_POLL = 0.1  # seconds between attempts while another run holds the lock


class LockFailed(Exception):
    """The lock could not be taken: the play does not start (its `fatal` record)."""


class Stopped(Exception):
    """Asked to stop while waiting for the lock."""


def _lock_dir(asked=None):
    for path in [asked] if asked else LOCK_DIRS:
        if os.path.isdir(path) and os.access(path, os.W_OK):
            return path
    raise LockFailed("no writable directory for the host lock in %s" % ", ".join(LOCK_DIRS))


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
                info = _json_lib().loads(handle.read())
        except (OSError, ValueError):
            continue
        if _alive(int(info.get("pid", 0))):
            found.append(info)
        else:  # its process died without cleaning up; the kernel released its lock
            try:
                os.unlink(path)
            except OSError:
                pass
    return found


def _json_lib():
    """The host library's JSON (vnet_core), loaded before the lock is taken."""
    return sys.modules["vnet_core"]


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
    if spec.get("borrowed"):  # held by this run's own watchdog, awaiting its gates
        return HostLock(None, directory, "borrowed", spec.get("owner", ""))
    try:
        fd = _open_lock_file(os.path.join(directory, LOCK_FILE))
    except OSError as exc:  # e.g. no inode left on a full /run/lock: nothing changed
        why = "cannot open the host lock %s: %s" % (exc.filename, exc.strerror)
        raise LockFailed(why) from None
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
            raise LockFailed("host lock held by %s; gave up after %g s" % (who, wait))
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
        self.mine = self.add_holder(os.getpid(), owner) if fd is not None else None

    def add_holder(self, pid, owner):
        """The file naming a holder, whole or absent (a reader never sees half of it);
        None when it cannot be written (a full /run/lock): it only says who holds the
        lock, which a waiting run then cannot name."""
        path = os.path.join(self.directory, "%s.%d.holder" % (LOCK_FILE, pid))
        info = {"pid": pid, "mode": self.mode, "since": time.time(), "owner": owner}
        try:
            sys.modules["vnet_files"].write_whole(path, _json_lib().dumps(info))
        except OSError:
            return None
        return path

    def release(self):
        if self.mine is not None:
            try:
                os.unlink(self.mine)
            except OSError:
                pass
        if self.fd is not None:
            os.close(self.fd)
