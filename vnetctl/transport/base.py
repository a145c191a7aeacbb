"""What the runner needs from an SSH transport, and the failures it distinguishes."""

from __future__ import annotations

import errno
import re
import socket
from dataclasses import dataclass
from typing import Protocol

from vnetctl.secrets import Secret


class Unreachable(Exception):
    """The host could not be reached or refused us: it gets no task results (exit code 3)."""


class HostKeyRefused(Unreachable):
    """The host's key does not match known_hosts, or it is unknown and not accepted."""


class AuthFailed(Unreachable):
    """Authentication failed: retrying would not help."""


class ConnectionLost(Unreachable):
    """An open connection died (peer gone, keepalives unanswered, reset)."""


@dataclass(frozen=True)
class Target:
    """Where and how to connect to one host (from inventory vars; None = ssh config).
    The inventory's ConnectionSpec is a Target with what runs there added: the one
    shape a host's connection settings have, computed once per run."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    known_hosts: str | None = None  # None: the user's ~/.ssh/known_hosts
    connect_timeout: float = 10.0
    password: Secret | None = None


@dataclass
class TransportOptions:
    accept_new_host_keys: bool = False  # StrictHostKeyChecking=accept-new
    retries: int = 2  # extra attempts after a transient failure
    # a dead peer is found after keepalive_interval * keepalive_count_max seconds
    keepalive_interval: float = 5.0
    keepalive_count_max: int = 3


class RemoteProcess(Protocol):
    """One command running on a host: stdin stays open until close_stdin()."""

    async def write(self, data: str) -> None: ...

    def close_stdin(self) -> None:
        """EOF on the remote stdin (vnetctl's host process stops after its task in flight)."""
        ...

    async def readline(self) -> str:
        """The next stdout line; '' once stdout is closed. ConnectionLost if the session died."""
        ...

    async def readlines(self) -> list[str]:
        """The stdout lines that have arrived (at least one; [] once stdout is closed), so
        that what answers them can be written once. Not to be mixed with readline() on
        one process. ConnectionLost if the session died."""
        ...

    async def wait(self) -> tuple[int | None, str]:
        """(exit status, stderr) once the process ended; ConnectionLost if the connection
        died first (a status of None: ended by a signal)."""
        ...

    async def terminate(self) -> None:
        """Close the channel (bounded); the process may outlive it: the runner ends it."""
        ...


class LineByLine:
    """readlines() for a process whose stdout is read a line at a time."""

    async def readline(self) -> str:
        raise NotImplementedError

    async def readlines(self) -> list[str]:
        line = await self.readline()
        return [line] if line else []


class Connection(Protocol):
    async def start(self, command: str) -> RemoteProcess: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def connect(self, target: Target, options: TransportOptions) -> Connection: ...


class RemoteFailure(Exception):
    def __init__(self, exit_status: int | None, stderr: str):
        self.exit_status = exit_status
        self.stderr = stderr.strip()
        super().__init__(f"remote process exited with {exit_status}: {self.stderr[-2000:]}")


def changed_key_message(address: str, where: str) -> str:
    """A known host presenting a different key: never accepted, and said plainly."""
    return (
        f"host key for {address} has CHANGED (it differs from the one in {where}): this may "
        "be an attack (man in the middle), or the host was reinstalled. Check with its "
        "administrator; if the change is expected, remove the old key (ssh-keygen -R) "
        "and reconnect with --accept-new-host-keys"
    )


def unknown_key_message(address: str, where: str) -> str:
    return (
        f"host key verification failed for {address}: the host is not in {where} "
        "(use --accept-new-host-keys to trust and record hosts seen for the first time)"
    )


_CONNECT_ERRORS = {
    errno.EHOSTUNREACH: "no route to {where}: the host is down or not on this network "
    "(nothing answered ARP, or a router said so)",
    errno.ENETUNREACH: "network unreachable: this machine has no route to {where}",
    errno.ECONNREFUSED: "{where} refused the connection: no SSH server listens on that port",
    errno.ECONNRESET: "{where} reset the connection before SSH began",
    errno.ETIMEDOUT: "no answer from {where} (the connection timed out)",
}


def connect_failure(exc: OSError, target: Target, attempts: int) -> str:
    """A connection error as a sentence naming host:port, not `[Errno 113] Connect call
    failed ('10.0.0.5', 22)`; `attempts`: how many were made."""
    where = f"{target.address}:{target.port or 22}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {target.address}: {exc.strerror or exc}"
    code = exc.errno
    if code is None and isinstance(exc, ConnectionRefusedError):
        code = errno.ECONNREFUSED
    if code is None:  # asyncio's "Multiple exceptions: [Errno 111] ..., [Errno 111] ..."
        found = {int(n) for n in re.findall(r"\[Errno (\d+)\]", str(exc))}
        code = found.pop() if len(found) == 1 else None
    template = _CONNECT_ERRORS.get(code)  # type: ignore[arg-type]
    text = template.format(where=where) if template else f"cannot connect to {where}: "
    if not template:
        text += exc.strerror or str(exc) or type(exc).__name__
    return text + (f" ({attempts} attempts)" if attempts > 1 else "")
