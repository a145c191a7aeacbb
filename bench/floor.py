"""The floor: one SSH connection and one `true` per host, all hosts at once (asyncssh).
No tool that opens a connection and runs a command per host can beat it.

    python -m bench.floor INVENTORY
"""

from __future__ import annotations

import asyncio
import sys

from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory
from vnetctl.transport.asyncssh_module import asyncssh


def connect(spec: ConnectionSpec) -> asyncssh.SSHClientConnection:
    """The plainest asyncssh connection to an inventory host (no ~/.ssh/config)."""
    return asyncssh.connect(
        spec.address,
        port=spec.port or 22,
        username=spec.user,
        client_keys=[spec.key_file] if spec.key_file else None,
        known_hosts=spec.known_hosts,
        config=None,
    )


async def one(spec: ConnectionSpec) -> None:
    async with connect(spec) as conn:
        await conn.run("true", check=True)


async def main(inventory_path: str) -> None:
    inventory = load_inventory(inventory_path)
    specs = [ConnectionSpec.from_host(h) for h in inventory.select("all")]
    await asyncio.gather(*(one(spec) for spec in specs))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
