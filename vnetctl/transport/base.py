"""What the runner needs from an SSH transport, and the failures it distinguishes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class Unreachable(Exception):
    """The host could not be reached or refused us: it gets no task results (exit code 3)."""


class HostKeyRefused(Unreachable):
    """The host's key does not match known_hosts, or it is unknown and not accepted."""


class AuthFailed(Unreachable):
    """Authentication failed: retrying would not help."""


@dataclass
class Target:
    """Where and how to connect to one host (from inventory vars; None = ssh config)."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None  # None: the user's ~/.ssh/known_hosts
    connect_timeout: float = 10.0


@dataclass
class TransportOptions:
    accept_new_host_keys: bool = False  # StrictHostKeyChecking=accept-new
    retries: int = 2  # extra attempts after a transient failure


class Connection(Protocol):
    def stream(self, command: str, stdin: str) -> AsyncIterator[str]:
        """Run `command`, feed `stdin`, yield stdout lines as they arrive.

        Raises RemoteFailure when the command exits non-zero."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def connect(self, target: Target, options: TransportOptions) -> Connection: ...


class RemoteFailure(Exception):
    def __init__(self, exit_status: int | None, stderr: str):
        self.exit_status = exit_status
        self.stderr = stderr.strip()
        super().__init__(f"remote process exited with {exit_status}: {self.stderr[-2000:]}")
