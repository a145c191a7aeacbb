"""Writing files that others read while we write: reports, unit files, cron lines.

A file goes only where its directory already is: a missing directory is an error naming
it (a mistyped path must not quietly grow a tree), as is a directory vnetctl cannot
write in; both are checked before a check connects to any host (`check_writable`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vnetctl.errors import InputError


def _directory(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def check_writable(path: Path, option: str) -> None:
    """InputError unless `path` can be written (atomically) where it is; `option` names
    where the path was given, e.g. "-o" or "--report html"."""
    path, directory = Path(path), _directory(Path(path))
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise InputError(f"{option} {path}: directory {directory} {what} (create it first)")
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory, not a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=directory)
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write in {directory}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> Path:
    """Readers only ever see a whole file: a temporary file beside it, fsync, rename.
    An OSError (no such directory, read-only, disk full) is an InputError naming the path."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=_directory(path))
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
