"""Connections to hosts: one per host, opened on first use and kept until the runner
says the host needs it no more (vnetctl.runner.runner: its last play of the run's last
phase is over), or the run ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from vnetctl.transport.base import Connection, Transport, TransportOptions
from vnetctl.transport.registry import load_transport
from vnetctl.transport.retry import SSH_LOG  # shown by `run -vvv` (vnetctl.output.verbosity)

# a connection being closed is given this long; past it, it was told to close and is
# dropped (a dead peer must not hold a fork slot)
CLOSE_WAIT = 5.0

if TYPE_CHECKING:
    from vnetctl.inventory.connection import ConnectionSpec
    from vnetctl.runner.control import RunOptions


def describe(transport: Transport, spec: ConnectionSpec, opts: TransportOptions) -> str:
    """How a connection is attempted, for -vvv: never a password, only that there is one."""
    who = f"{spec.user}@" if spec.user else ""
    port = f":{spec.port}" if spec.port else " (port from ssh config, else 22)"
    auth = "keys from ssh config and agent"
    if spec.key_file or spec.password is not None:
        auth = f"key {spec.key_file}" if spec.key_file else "password"
    library = getattr(transport, "name", type(transport).__name__)
    known = "accept new host keys" if opts.accept_new_host_keys else "known hosts only"
    return (f"[{spec.name}] SSH connect to {who}{spec.address}{port} with {library}: "
            f"{auth}, {known} ({spec.known_hosts or '~/.ssh/known_hosts'}), timeout "
            f"{spec.connect_timeout:g} s, {opts.retries} retries")  # fmt: skip


async def _connect(transport: Transport, spec: ConnectionSpec, opts: TransportOptions):
    SSH_LOG.info("%s", describe(transport, spec, opts))
    started = time.monotonic()
    try:
        conn = await transport.connect(spec, opts)
    except Exception as exc:
        SSH_LOG.info("[%s] SSH connect failed after %.2f s: %s", spec.name,
                     time.monotonic() - started, exc)  # fmt: skip
        raise
    SSH_LOG.info("[%s] SSH connected in %.2f s", spec.name, time.monotonic() - started)
    return conn


def said_remote(host: str, command: str, sudo_password: bool) -> None:
    """-vvv: the command a play's process runs as (its password never in it)."""
    first = ", sudo's password first" if sudo_password else ""
    SSH_LOG.info("[%s] remote process: %s (its stdin: the program, the play's tasks%s)",
                 host, command, first)  # fmt: skip


class ConnectionPool:
    """One connection per host, opened on first use and kept until closed."""

    def __init__(
        self,
        specs: dict[str, ConnectionSpec],
        options: RunOptions,
        transports: dict[str, Transport] | None = None,
    ):
        self._specs = specs
        self._options = options
        self._transports = dict(transports or {})
        self._open: dict[str, Connection] = {}

    async def get(self, host: str) -> Connection:
        if host not in self._open:
            spec = self._specs[host]
            transport = self._transport(spec.transport or self._options.transport)
            opts = TransportOptions(self._options.accept_new_host_keys, self._options.retries)
            self._open[host] = await _connect(transport, spec, opts)
        return self._open[host]

    def _transport(self, name: str) -> Transport:
        if name not in self._transports:
            self._transports[name] = load_transport(name)
        return self._transports[name]

    async def fresh(self, host: str) -> Connection:
        """A connection of its own, not kept: proof the host can be reached now."""
        spec = self._specs[host]
        transport = self._transport(spec.transport or self._options.transport)
        opts = TransportOptions(self._options.accept_new_host_keys, retries=0)
        return await _connect(transport, spec, opts)

    @property
    def hosts(self) -> frozenset[str]:
        """The hosts whose connection is open."""
        return frozenset(self._open)

    async def close(self, hosts: Iterable[str]) -> None:
        """Close these hosts' connections (a later `get` opens a new one)."""
        conns = [self._open.pop(h) for h in list(hosts) if h in self._open]
        await asyncio.gather(*(_bounded_close(c) for c in conns), return_exceptions=True)

    async def close_all(self) -> None:
        await self.close(self._open)


async def _bounded_close(conn: Connection) -> None:
    await asyncio.wait_for(conn.close(), CLOSE_WAIT)


def last_plays(plans: list, then: Sequence) -> dict[str, int]:
    """Per host, the position in `plans` of the last play naming it; past the end when
    a plan of `then` names it (its connection is kept through these plans)."""
    last: dict[str, int] = {}
    for position, plan in enumerate([*plans, *then]):
        for host in plan.hosts:
            last[host] = position
    return last
