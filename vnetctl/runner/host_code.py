"""What the controller knows of each host's code cache (vnetctl.hostside.boot.Cache): the
bytecode magic of the host's Python and, by source digest, the digest of the compiled
file the host keeps, as the host reported them ({"cached": ...} records). It decides
only what goes down the host's stdin as two digests instead of the file: the host uses
a cached file only when its content has the digest asked for, and asks for what it
lacks ({"need": ...}), so knowledge that is wrong or stale costs one round trip, never
a wrong program.

Kept for the run, and between runs in one small JSON file per host under
$XDG_CACHE_HOME/vnetctl/hosts (~/.cache/vnetctl/hosts), written whole (a temporary
file renamed) or not at all: a file that cannot be written (a full disk) or read back
is as if absent, and that host is sent its code whole, as on first contact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vnetctl.hostside.boot import CACHE_DIR

if TYPE_CHECKING:
    from vnetctl.inventory.connection import ConnectionSpec

DIGEST = re.compile(r"^[0-9a-f]{32}$")
MAGIC = re.compile(r"^[0-9a-f]{8}$")
KEEP = 512  # digests kept per host: older vnetctl versions' files fall out


@dataclass
class HostCode:
    magic: str | None = None  # None: not known yet
    code: dict[str, str] = field(default_factory=dict)  # source digest -> code digest
    cache: str | None = CACHE_DIR  # the host's cache directory (None: no cache)

    def learn(self, report: object) -> bool:
        """Take a host's {"magic", "code"} report; True when something new was learnt.
        A report that is not one is ignored."""
        if not isinstance(report, dict) or not isinstance(report.get("code"), dict):
            return False
        magic = report.get("magic")
        if not isinstance(magic, str) or not MAGIC.match(magic):
            return False
        fresh = {  # interned: the hosts of a fleet report the same digests (memory per host)
            sys.intern(s): sys.intern(c) for s, c in report["code"].items()
            if isinstance(s, str) and isinstance(c, str) and DIGEST.match(s) and DIGEST.match(c)
        }  # fmt: skip
        changed = magic != self.magic
        if changed:  # another Python there now: the old files are for the old bytecode
            self.magic, self.code = sys.intern(magic), {}
        fresh = {s: c for s, c in fresh.items() if self.code.get(s) != c}
        self.code.update(fresh)
        for old in list(self.code)[: max(0, len(self.code) - KEEP)]:
            del self.code[old]
        return changed or bool(fresh)

    def forget(self, source_digests: set[str]) -> None:
        """The host lacked these (asked for them): sent whole until it reports them kept."""
        for name in source_digests:
            self.code.pop(name, None)


def host_key(spec: ConnectionSpec) -> str:
    """One host as its code cache sees it: where it is, who runs the play, with which
    Python (another interpreter or user has another cache)."""
    user = spec.become_user if spec.become else spec.user
    return f"{spec.user}@{spec.address}:{spec.port or 22} {user} {spec.python}"


def default_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vnetctl" / "hosts"


class HostCodeStore:
    """HostCode per host for one run, read from and saved to `directory` (None: the
    default; tests give their own)."""

    def __init__(self, directory: str | Path | None = None, host_cache: str | None = None):
        self.directory = Path(directory) if directory else default_directory()
        self.host_cache = host_cache or CACHE_DIR  # every host's cache directory
        self._known: dict[str, HostCode] = {}

    def _path(self, key: str) -> Path:
        name = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return self.directory / f"{name}.json"

    def get(self, spec: ConnectionSpec) -> HostCode:
        key = host_key(spec)
        if key not in self._known:
            found = HostCode(cache=self.host_cache)
            with contextlib.suppress(OSError, ValueError):
                saved = json.loads(self._path(key).read_text())
                if isinstance(saved, dict) and saved.get("key") == key:
                    found.learn(saved)
            self._known[key] = found
        return self._known[key]

    def save(self, spec: ConnectionSpec) -> None:
        """Write what is known of the host, whole or not at all; a failure is no error
        (the next run sends that host's code whole)."""
        key = host_key(spec)
        known = self._known.get(key)
        if known is None or known.magic is None:
            return
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        text = json.dumps({"key": key, "magic": known.magic, "code": known.code})
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
