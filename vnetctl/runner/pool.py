"""Connections to hosts: one per host, opened on first use and kept for the run."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from vnetctl.transport.base import Connection, Transport, TransportOptions
from vnetctl.transport.registry import load_transport

if TYPE_CHECKING:
    from vnetctl.inventory.connection import ConnectionSpec
    from vnetctl.runner.control import RunOptions


class ConnectionPool:
    """One connection per host, opened on first use and kept for the run."""

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
            self._open[host] = await transport.connect(spec, opts)
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
        return await transport.connect(spec, opts)

    async def close_all(self) -> None:
        conns, self._open = list(self._open.values()), {}
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
