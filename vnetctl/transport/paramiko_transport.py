"""Second transport: paramiko (blocking), driven from worker threads.

For environments where asyncssh is not wanted (FIPS-pinned crypto, existing paramiko
key setups). Same contract and the same known_hosts rules as the default transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import paramiko

from vnetctl.transport import base
from vnetctl.transport.known_hosts import known_hosts_path, record_host_key
from vnetctl.transport.retry import is_transient, with_retries


class _AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Only reached for hosts with no known_hosts entry (a mismatch raises earlier)."""

    def __init__(self, target: base.Target):
        self._target = target

    def missing_host_key(self, client, hostname, key) -> None:
        line = f"{key.get_name()} {key.get_base64()}"
        record_host_key(
            known_hosts_path(self._target), self._target.address, self._target.port, line
        )


def _resolve(target: base.Target) -> dict:
    """~/.ssh/config fills what the inventory left unset, as ssh(1) would."""
    config = {}
    path = os.path.expanduser("~/.ssh/config")  # at call time: HOME may differ per run
    if os.path.exists(path):
        config = paramiko.SSHConfig.from_path(path).lookup(target.address)
    key_files = [target.key_file] if target.key_file else config.get("identityfile") or None
    return {
        "hostname": config.get("hostname", target.address),
        "port": target.port or int(config.get("port", 22)),
        "username": target.user or config.get("user"),
        "key_filename": key_files,
        "password": target.password.reveal() if target.password is not None else None,
        "timeout": target.connect_timeout,
        "banner_timeout": target.connect_timeout,
        "auth_timeout": target.connect_timeout,
        "look_for_keys": key_files is None and target.password is None,
        "allow_agent": target.password is None,
    }


class ParamikoProcess(base.LineByLine):
    def __init__(self, connection: ParamikoConnection, channel: paramiko.Channel):
        self._connection = connection
        self._channel = channel
        self._stdout = channel.makefile("r")

    def _check_alive(self) -> None:
        if self._connection.lost is not None:
            raise base.ConnectionLost(self._connection.lost)

    async def write(self, data: str) -> None:
        try:
            await asyncio.to_thread(self._channel.sendall, data.encode())
        except (OSError, paramiko.SSHException) as exc:
            self._check_alive()
            raise base.ConnectionLost(f"connection lost: {exc}") from None

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
            self._channel.shutdown_write()

    async def readline(self) -> str:
        try:
            line = await asyncio.to_thread(self._stdout.readline)
        except (OSError, paramiko.SSHException) as exc:
            self._check_alive()
            raise base.ConnectionLost(f"connection lost: {exc}") from None
        if not line:
            self._check_alive()
        return line

    async def wait(self) -> tuple[int | None, str]:
        status = await asyncio.to_thread(self._channel.recv_exit_status)
        self._check_alive()
        if status == -1:  # no exit-status: ended by a signal, or the transport died
            if not self._channel.get_transport().is_active():
                raise base.ConnectionLost("connection lost: the session ended without a status")
            status = None
        stderr = await asyncio.to_thread(self._channel.makefile_stderr("r").read)
        return status, stderr.decode(errors="replace")

    async def terminate(self) -> None:
        """Close the channel (the runner has ended the process group, where it could)."""
        with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
            await asyncio.to_thread(self._channel.close)


class ParamikoConnection:
    def __init__(self, client: paramiko.SSHClient, options: base.TransportOptions):
        self._client = client
        self._options = options
        self.lost: str | None = None
        self._watch = asyncio.get_running_loop().create_task(self._keepalive())

    async def _keepalive(self) -> None:
        """paramiko's own keepalive only sends; here each probe must be answered."""
        transport = self._client.get_transport()
        missed = 0
        while transport.is_active():
            await asyncio.sleep(self._options.keepalive_interval)
            probe = asyncio.to_thread(transport.global_request, "keepalive@openssh.com")
            try:
                await asyncio.wait_for(probe, self._options.keepalive_interval)
                missed = 0
            except TimeoutError:
                missed += 1
                if missed >= self._options.keepalive_count_max:
                    wait = self._options.keepalive_interval * missed
                    self.lost = f"connection lost: no answer to keepalives for {wait:g} s"
                    transport.close()  # unblocks every reader of its channels

    async def start(self, command: str) -> ParamikoProcess:
        def open_channel() -> paramiko.Channel:
            channel = self._client.get_transport().open_session()
            channel.exec_command(command)
            return channel

        try:
            return ParamikoProcess(self, await asyncio.to_thread(open_channel))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise base.ConnectionLost(self.lost or f"connection lost: {exc}") from None

    async def close(self) -> None:
        self._watch.cancel()
        await asyncio.to_thread(self._client.close)


class ParamikoTransport:
    name = "paramiko"

    async def connect(
        self, target: base.Target, options: base.TransportOptions
    ) -> ParamikoConnection:
        path = known_hosts_path(target)

        def attempt_sync() -> paramiko.SSHClient:
            client = paramiko.SSHClient()
            if path.exists():
                client.load_host_keys(str(path))
            if options.accept_new_host_keys:
                client.set_missing_host_key_policy(_AcceptNewPolicy(target))
            else:
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(**_resolve(target))
            except paramiko.ssh_exception.NoValidConnectionsError as exc:
                # paramiko wraps the socket's error without its errno: give it back (a
                # refusal, an unreachable host) so that it is retried and said as such
                first = next(iter(exc.errors.values()), None)
                if isinstance(first, OSError) and first.errno:
                    raise OSError(first.errno, first.strerror) from None
                raise ConnectionRefusedError(str(exc)) from None
            return client

        async def attempt() -> paramiko.SSHClient:
            return await asyncio.to_thread(attempt_sync)

        try:
            client = await with_retries(attempt, options.retries, target.name)
            return ParamikoConnection(client, options)
        except paramiko.BadHostKeyException:
            raise base.HostKeyRefused(base.changed_key_message(target.address, str(path))) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise base.HostKeyRefused(
                    base.unknown_key_message(target.address, str(path))
                ) from None
            if isinstance(exc, paramiko.AuthenticationException):
                raise base.AuthFailed(f"authentication failed: {exc}") from None
            raise base.Unreachable(str(exc)) from None
        except TimeoutError:
            raise base.Unreachable(
                f"no SSH answer within {target.connect_timeout:g} s "
                f"({options.retries + 1} attempts)"
            ) from None
        except OSError as exc:
            attempts = options.retries + 1 if is_transient(exc) else 1
            raise base.Unreachable(base.connect_failure(exc, target, attempts)) from None
