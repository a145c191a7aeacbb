"""Second transport: paramiko (blocking), driven from worker threads.

For environments where asyncssh is not wanted (FIPS-pinned crypto, existing paramiko
key setups). Same contract and the same known_hosts rules as the default transport.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import paramiko

from vnetctl.transport import base
from vnetctl.transport.known_hosts import host_pattern, known_hosts_path, record_host_key
from vnetctl.transport.retry import with_retries


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
        "timeout": target.connect_timeout,
        "banner_timeout": target.connect_timeout,
        "auth_timeout": target.connect_timeout,
        "look_for_keys": key_files is None,
    }


class ParamikoConnection:
    def __init__(self, client: paramiko.SSHClient):
        self._client = client

    async def stream(self, command: str, stdin: str) -> AsyncIterator[str]:
        channel = await asyncio.to_thread(self._open, command, stdin)
        reader = channel.makefile("r")
        while line := await asyncio.to_thread(reader.readline):
            yield line
        status = await asyncio.to_thread(channel.recv_exit_status)
        if status != 0:
            raise base.RemoteFailure(status, channel.makefile_stderr("r").read().decode())

    def _open(self, command: str, stdin: str) -> paramiko.Channel:
        channel = self._client.get_transport().open_session()
        channel.exec_command(command)
        channel.sendall(stdin.encode())
        channel.shutdown_write()
        return channel

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


class ParamikoTransport:
    name = "paramiko"

    async def connect(
        self, target: base.Target, options: base.TransportOptions
    ) -> ParamikoConnection:
        def attempt_sync() -> paramiko.SSHClient:
            client = paramiko.SSHClient()
            path = known_hosts_path(target)
            if path.exists():
                client.load_host_keys(str(path))
            if options.accept_new_host_keys:
                client.set_missing_host_key_policy(_AcceptNewPolicy(target))
            else:
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(**_resolve(target))
            except paramiko.ssh_exception.NoValidConnectionsError as exc:
                # paramiko wraps "refused" without an errno; make it retryable
                raise ConnectionRefusedError(str(exc)) from None
            return client

        async def attempt() -> paramiko.SSHClient:
            return await asyncio.to_thread(attempt_sync)

        try:
            return ParamikoConnection(await with_retries(attempt, options.retries))
        except paramiko.BadHostKeyException:
            raise base.HostKeyRefused(
                f"host key verification failed for {target.address}: the key does not "
                f"match the entry for {host_pattern(target.address, target.port)}"
            ) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise base.HostKeyRefused(
                    f"host key verification failed for {target.address}: host not in "
                    f"{known_hosts_path(target)} (use --accept-new-host-keys)"
                ) from None
            if isinstance(exc, paramiko.AuthenticationException):
                raise base.AuthFailed(f"authentication failed: {exc}") from None
            raise base.Unreachable(str(exc)) from None
        except (TimeoutError, OSError) as exc:
            raise base.Unreachable(str(exc) or type(exc).__name__) from None
