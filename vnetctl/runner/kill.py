"""Ending a host's remote process that does not stop by itself (a play past its
timeout, a stop request, no exit after its last record)."""

from __future__ import annotations

import asyncio

from vnetctl.runner.payload import kill_command
from vnetctl.transport.base import Connection, ConnectionLost, RemoteProcess

KILL_WAIT = 2.0  # after each signal: time for the remote process to end


async def kill(conn: Connection, process: RemoteProcess, pid: int | None, spec,
               done: asyncio.Future) -> None:  # fmt: skip
    """TERM, then KILL, to its process group (`pid`) from a second session on the same
    connection, until `done`; then the channel."""
    if pid is not None:
        password = spec.become_password if spec.become else None
        for signal in ("TERM", "KILL"):
            command = kill_command(pid, signal, spec.become, spec.become_user,
                                   password is not None)  # fmt: skip
            try:
                killer = await conn.start(command)
                if password is not None:
                    await killer.write(password.reveal() + "\n")
                killer.close_stdin()
                await asyncio.wait_for(killer.wait(), KILL_WAIT)
            except (ConnectionLost, TimeoutError):
                break
            await asyncio.wait({done}, timeout=KILL_WAIT)
            if done.done():
                break
    await process.terminate()
