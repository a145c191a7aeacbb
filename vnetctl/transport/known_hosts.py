"""known_hosts files: where they are and how a newly accepted key is recorded."""

from __future__ import annotations

import os
from pathlib import Path

from vnetctl.transport.base import Target


def known_hosts_path(target: Target) -> Path:
    return Path(target.known_hosts or os.path.expanduser("~/.ssh/known_hosts"))


def host_pattern(address: str, port: int | None) -> str:
    return address if port in (None, 22) else f"[{address}]:{port}"


def record_host_key(path: Path, address: str, port: int | None, openssh_key: str) -> None:
    """Append one line; only for --accept-new-host-keys and a host with no entry yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{host_pattern(address, port)} {openssh_key.strip()}\n")
