"""Default transport: asyncssh, one connection per host, one process per play."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncssh

from vnetctl.transport import base
from vnetctl.transport.known_hosts import known_hosts_path, record_host_key
from vnetctl.transport.retry import with_retries


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


def _known_hosts(target: base.Target) -> str | asyncssh.SSHKnownHosts:
    """A missing file means no host is known yet (as ssh(1) treats it), not an error."""
    path = known_hosts_path(target)
    return str(path) if path.exists() else asyncssh.import_known_hosts("")


def _host_is_known(target: base.Target) -> bool:
    path = known_hosts_path(target)
    if not path.exists():
        return False
    matches = asyncssh.read_known_hosts(str(path)).match(target.address, "", target.port)
    return any(matches[:3])


class AsyncsshConnection:
    def __init__(self, conn: asyncssh.SSHClientConnection):
        self._conn = conn

    async def stream(self, command: str, stdin: str) -> AsyncIterator[str]:
        process = await self._conn.create_process(command, encoding="utf-8")
        process.stdin.write(stdin)
        process.stdin.write_eof()
        async for line in process.stdout:
            yield line
        completed = await process.wait()
        if completed.exit_status != 0:
            raise base.RemoteFailure(completed.exit_status, await process.stderr.read())

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
        }
        if target.port:
            kwargs["port"] = target.port
        if target.user:
            kwargs["username"] = target.user
        if target.key_file:
            kwargs["client_keys"] = [target.key_file]
        if options.accept_new_host_keys:
            known = _host_is_known(target)
            kwargs["client_factory"] = lambda: _AcceptNewClient(target, known)

        async def attempt() -> asyncssh.SSHClientConnection:
            return await asyncssh.connect(target.address, **kwargs)

        try:
            return AsyncsshConnection(await with_retries(attempt, options.retries))
        except asyncssh.HostKeyNotVerifiable as exc:
            raise base.HostKeyRefused(
                f"host key verification failed for {target.address}: {exc.reason} "
                "(use --accept-new-host-keys for hosts not yet in known_hosts)"
            ) from None
        except asyncssh.PermissionDenied as exc:
            raise base.AuthFailed(f"authentication failed: {exc.reason}") from None
        except (OSError, asyncssh.Error) as exc:
            raise base.Unreachable(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason
    return str(exc) or type(exc).__name__
