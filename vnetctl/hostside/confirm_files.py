"""Commit confirmed: a play's directory on the host, where its rollback timer keeps all
its state (vnetctl.hostside.safe_apply has the watchdog that uses it).

Runs on the host (Python 3.9+, standard library only): in the play's process and its
watchdog (installed as vnet_confirm_files), and alone, over a NEW connection, to confirm,
to roll back now or to collect a result (payload.CONFIRM_STUB). One directory per play,
/run/lock/vnetctl-confirm-PLAY:

    reserve    space taken before arming, that the result is later written into: a
               filesystem filled during the play cannot keep the watchdog from saying
               what it did
    journal    what a rollback needs, one entry per line: its CRC-32 (8 hex digits), a
               blank, the entry as JSON. An entry is written whole and synced before the
               change it covers; one that cannot be (a full disk) is cut off again and
               that change is refused. A line that does not check out is never read as
               an entry: it is counted as damage, and the rollback says so
    armed      exists while the play waits for confirmation (made last: a directory
               without it was never armed)
    confirmed  the controller reached the host over a new connection (renamed from armed)
    expired    the timer ran out, or the controller asked for the rollback now (a failed
               health gate): renamed from armed, which only one rename can do
    result     after the rollback: {"rolled_back", "left", "problems", "after_task",
               "owner", "armed_at", "at"}, written into the reserve, then renamed

The watchdog holds an flock on the directory while it lives: a directory that nobody
holds and that has no result belongs to a watchdog that died; that is said, never waited
for. A later run on the host collects what an earlier one left (`leftovers`).
"""

import os
import time

PREFIX = "vnetctl-confirm-"
STATE_ROOT = "/run/lock"  # tmpfs, writable by root and by sudo users; gone at reboot
RESERVE = 64 * 1024  # bytes kept for the result
POLL = 0.2  # seconds between looks for a change of state


def play_dir(play_id, root=None):
    return os.path.join(root or STATE_ROOT, PREFIX + play_id)


class JournalError(OSError):
    """An entry could not be written whole: the change it covers must not be made."""


def _frame(entry):
    import binascii  # noqa: PLC0415
    import json  # noqa: PLC0415 (only a play that arms the timer writes its journal)

    data = json.dumps(entry, default=str).encode()
    return b"%08x %s\n" % (binascii.crc32(data), data)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Journal:
    """The play's tasks, each with the state it had before: the rollback target. Kept in
    memory until the timer is armed (`attach`), then appended to the file as well."""

    def __init__(self):
        self.entries = []
        self.path = None

    def record(self, entry):
        """Raises JournalError, the entry left out, when the file cannot hold it."""
        if self.path is not None:
            self._append([entry])
        self.entries.append(entry)

    def attach(self, path):
        self.path = path
        try:
            self._append(self.entries)
        except BaseException:
            self.path = None
            raise

    def _append(self, entries):
        data = b"".join(_frame(e) for e in entries)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._error(exc) from None
        try:
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError as exc:
                try:  # what was written of it goes: the journal ends where it did
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise self._error(exc) from None
        finally:
            os.close(fd)

    def _error(self, exc):
        return JournalError(exc.errno, "cannot journal the state before the task for a "
                            "rollback: %s" % exc.strerror, self.path)  # fmt: skip


def read_journal(directory):
    """(entries, damaged): the entries that check out, and how many lines did not. A
    last line without its newline is one whose writer was stopped before the change it
    covered (entries are written before their change): it is left out, not damage."""
    import binascii  # noqa: PLC0415
    import json  # noqa: PLC0415

    try:
        with open(os.path.join(directory, "journal"), "rb") as handle:
            lines = handle.read().split(b"\n")
    except FileNotFoundError:
        return [], 0
    entries, damaged = [], 0
    for line in lines[:-1]:  # the last item is what follows the last newline
        crc, _, data = line.partition(b" ")
        try:
            if int(crc, 16) != binascii.crc32(data):
                raise ValueError("checksum")
            entries.append(json.loads(data))
        except ValueError:
            damaged += 1
    return entries, damaged


def reserve(directory):
    fd = os.open(os.path.join(directory, "reserve"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(fd, bytes(RESERVE))  # written, not just sized: the pages are taken
        os.fsync(fd)
    finally:
        os.close(fd)


def write_result(directory, result):
    """The result, whole: into the reserve (space taken at arming) and renamed; without a
    reserve, through a new file. Lists too long for the reserve are shortened."""
    import json  # noqa: PLC0415

    data = json.dumps(result, default=str).encode()
    for key in ("left", "problems"):
        items = result.get(key) or []
        while len(data) > RESERVE and items:
            items = items[: len(items) // 2]
            cut = len(result[key]) - len(items)
            result = dict(result, **{key: items + ["... and %d more" % cut]})
            data = json.dumps(result, default=str).encode()
    final, spare = os.path.join(directory, "result"), os.path.join(directory, "reserve")
    try:
        fd = os.open(spare, os.O_WRONLY)
    except FileNotFoundError:
        spare = final + ".tmp"
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(spare, final)


def hold(directory):
    """Taken before the watchdog is forked, which inherits it: the directory's flock,
    held while the watchdog lives. Returns the descriptor for the parent to close."""
    import fcntl  # noqa: PLC0415

    fd = os.open(directory, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def watched(directory):
    """A live watchdog holds the directory."""
    import fcntl  # noqa: PLC0415

    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _remove(directory):
    import shutil  # noqa: PLC0415

    shutil.rmtree(directory, ignore_errors=True)


def _state(directory):
    for name in ("armed", "expired", "confirmed"):
        if os.path.exists(os.path.join(directory, name)):
            return name
    return "unarmed"


# ---- run by the controller over a NEW connection -------------------------------

CONFIRM_WAIT = 5.0  # seconds for the watchdog to see the confirmation and clean up


def confirm(directory):
    """Confirm the play: 'confirmed', or the rollback's result if it came first, or
    'gone' when there is nothing to confirm."""
    try:
        os.rename(os.path.join(directory, "armed"), os.path.join(directory, "confirmed"))
    except OSError:
        return collect(directory)
    deadline = time.time() + CONFIRM_WAIT
    while os.path.exists(directory) and watched(directory) and time.time() < deadline:
        time.sleep(POLL / 4)
    if os.path.exists(directory) and not watched(directory):
        _remove(directory)  # its watchdog is gone: nothing else will
    return {"confirmed": True, "cleaned": not os.path.exists(directory)}


def abort(directory, wait):
    """Roll back now (a health gate failed), then collect as `collect` does."""
    try:
        os.rename(os.path.join(directory, "armed"), os.path.join(directory, "expired"))
    except OSError:
        pass  # confirmed, expired or gone already: collect says which
    return collect(directory, wait)


def collect(directory, wait=0.0):
    """The rollback's result (and the directory removed), waiting up to `wait` seconds
    for a rollback in progress. {"gone": True}: no such play; {"pending": True}: its
    watchdog is still at work; {"died": STATE}: its watchdog ended without a result."""
    import json  # noqa: PLC0415

    result = os.path.join(directory, "result")
    deadline = time.time() + wait
    while not os.path.exists(result) and watched(directory) and time.time() < deadline:
        time.sleep(POLL)
    if not os.path.exists(directory):
        return {"gone": True}
    try:
        with open(result) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        if watched(directory):
            return {"pending": True}
        data = {"died": _state(directory)}
    except (OSError, ValueError) as exc:
        data = {"unreadable": str(exc)}
    _remove(directory)
    return data


def leftovers(root=None):
    """What earlier plays left on this host: a result never collected (its controller
    was killed or lost the host), or a watchdog that died. Each is collected (its
    directory removed) and returned, with its play id; live watchdogs are left alone."""
    root = root or STATE_ROOT
    try:
        names = sorted(n for n in os.listdir(root) if n.startswith(PREFIX))
    except OSError:
        return []
    found = []
    for name in names:
        directory = os.path.join(root, name)
        if watched(directory):
            continue
        data = collect(directory)
        if not data.get("gone") and not data.get("pending"):
            found.append(dict(data, play=name[len(PREFIX) :]))
    return found
