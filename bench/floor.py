"""The floor: one SSH connection and one `true` per host, all hosts at once (asyncssh).
No tool that opens a connection and runs a command per host can beat it: it parses the
known_hosts file and loads the key once for all hosts (given their paths, asyncssh
does both at every connection: at 200 lab hosts, 400 known_hosts entries, that made the
floor's own CPU grow with N squared) and prefers the cheapest cipher.

    python -m bench.floor INVENTORY
"""

from __future__ import annotations

import asyncio
import sys

from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory
from vnetctl.transport.asyncssh_module import CIPHERS, asyncssh, client_keys, known_hosts


def connect(spec: ConnectionSpec) -> asyncssh.SSHClientConnection:
    """The plainest asyncssh connection to an inventory host (no ~/.ssh/config)."""
    return asyncssh.connect(
        spec.address,
        port=spec.port or 22,
        username=spec.user,
        client_keys=client_keys(spec.key_file) if spec.key_file else None,
        known_hosts=known_hosts(spec.known_hosts) if spec.known_hosts else None,
        encryption_algs=CIPHERS,
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
