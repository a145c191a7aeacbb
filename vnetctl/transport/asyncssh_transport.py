"""Default transport: asyncssh, one connection per host, one process per play."""

from __future__ import annotations

import asyncio
import contextlib

from vnetctl.transport import base
from vnetctl.transport.asyncssh_module import CIPHERS, asyncssh, client_keys, known_hosts
from vnetctl.transport.known_hosts import known_hosts_path, record_host_key
from vnetctl.transport.retry import is_transient, with_retries

CLOSE_WAIT = 2.0  # seconds for a closed channel to be confirmed
READ_SIZE = 1 << 16  # characters of stdout taken at most per readlines()


class _AcceptNewClient(asyncssh.SSHClient):
    """Called only for keys known_hosts does not trust: accept when the host is new."""

    def __init__(self, target: base.Target, host_is_known: bool):
        self._target = target
        self._host_is_known = host_is_known

    def validate_host_public_key(self, host, addr, port, key) -> bool:
        if self._host_is_known:
            return False  # a changed key is refused, never replaced
        record_host_key(
            known_hosts_path(self._target),
            self._target.address,
            self._target.port,
            key.export_public_key().decode(),
        )
        return True


def _known_hosts(target: base.Target) -> asyncssh.SSHKnownHosts:
    """A missing file means no host is known yet (as ssh(1) treats it), not an error."""
    try:
        return known_hosts(str(known_hosts_path(target)))
    except OSError:
        return asyncssh.import_known_hosts("")


def _host_is_known(target: base.Target) -> bool:
    path = known_hosts_path(target)
    if not path.exists():
        return False
    matches = asyncssh.read_known_hosts(str(path)).match(target.address, "", target.port)
    return any(matches[:3])


def _lost(exc: BaseException) -> base.ConnectionLost:
    return base.ConnectionLost(f"connection lost: {_describe(exc)}")


class AsyncsshProcess:
    def __init__(self, process: asyncssh.SSHClientProcess):
        self._process = process
        self._partial = ""  # readlines(): the start of a line whose end has not arrived

    async def write(self, data: str) -> None:
        try:
            self._process.stdin.write(data)
            await self._process.stdin.drain()
        except (OSError, asyncssh.Error) as exc:
            raise _lost(exc) from None

    def close_stdin(self) -> None:
        # already closed, or the channel is gone: either way no more input
        with contextlib.suppress(OSError, asyncssh.Error):
            self._process.stdin.write_eof()

    async def readline(self) -> str:
        try:
            return await self._process.stdout.readline()
        except (OSError, asyncssh.Error) as exc:
            raise _lost(exc) from None

    async def readlines(self) -> list[str]:
        lines: list[str] = []
        while not lines:
            try:
                data = await self._process.stdout.read(READ_SIZE)  # what has arrived
            except (OSError, asyncssh.Error) as exc:
                raise _lost(exc) from None
            if not data:  # stdout closed: a last line without its newline, then []
                rest, self._partial = self._partial, ""
                return [rest] if rest else []
            *complete, self._partial = (self._partial + data).split("\n")
            lines = [line + "\n" for line in complete]
        return lines

    async def wait(self) -> tuple[int | None, str]:
        try:
            completed = await self._process.wait(check=False)
        except (OSError, asyncssh.Error) as exc:
            raise _lost(exc) from None
        if completed.exit_status is None and completed.exit_signal is None:
            raise base.ConnectionLost("connection lost: the session ended without an exit status")
        return completed.exit_status, str(completed.stderr or "")

    async def terminate(self) -> None:
        """Close the channel (the runner has ended the process group, where it could)."""
        with contextlib.suppress(OSError, asyncssh.Error, TimeoutError):
            self._process.close()
            await asyncio.wait_for(self._process.wait_closed(), CLOSE_WAIT)


class AsyncsshConnection:
    def __init__(self, conn: asyncssh.SSHClientConnection):
        self._conn = conn

    async def start(self, command: str) -> AsyncsshProcess:
        try:
            process = await self._conn.create_process(command, encoding="utf-8")
        except (OSError, asyncssh.Error) as exc:
            raise _lost(exc) from None
        return AsyncsshProcess(process)

    async def close(self) -> None:
        self._conn.close()
        await self._conn.wait_closed()


class AsyncsshTransport:
    name = "asyncssh"

    async def connect(
        self, target: base.Target, options: base.TransportOptions
    ) -> AsyncsshConnection:
        kwargs: dict = {
            "connect_timeout": target.connect_timeout,
            "known_hosts": _known_hosts(target),
            "keepalive_interval": options.keepalive_interval,
            "keepalive_count_max": options.keepalive_count_max,
            "encryption_algs": CIPHERS,
        }
        if target.port:
            kwargs["port"] = target.port
        if target.user:
            kwargs["username"] = target.user
        if target.key_file:  # one it cannot load: given as the path, for asyncssh's own error
            with contextlib.suppress(OSError, ValueError):
                kwargs["client_keys"] = client_keys(target.key_file)
            kwargs.setdefault("client_keys", [target.key_file])
        if target.password is not None:
            kwargs["password"] = target.password.reveal()
        if options.accept_new_host_keys:
            known = _host_is_known(target)
            kwargs["client_factory"] = lambda: _AcceptNewClient(target, known)

        async def attempt() -> asyncssh.SSHClientConnection:
            return await asyncssh.connect(target.address, **kwargs)

        try:
            return AsyncsshConnection(await with_retries(attempt, options.retries, target.name))
        except asyncssh.HostKeyNotVerifiable:
            where = str(known_hosts_path(target))
            if _host_is_known(target):
                raise base.HostKeyRefused(base.changed_key_message(target.address, where)) from None
            raise base.HostKeyRefused(base.unknown_key_message(target.address, where)) from None
        except asyncssh.PermissionDenied as exc:
            raise base.AuthFailed(f"authentication failed: {exc.reason}") from None
        except TimeoutError:
            raise base.Unreachable(
                f"no SSH answer within {target.connect_timeout:g} s "
                f"({options.retries + 1} attempts)"
            ) from None
        except asyncssh.Error as exc:
            raise base.Unreachable(exc.reason) from None
        except OSError as exc:
            attempts = options.retries + 1 if is_transient(exc) else 1
            raise base.Unreachable(base.connect_failure(exc, target, attempts)) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason
    return str(exc) or type(exc).__name__
