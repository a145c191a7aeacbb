"""A ping over SSH: what one round trip to a lab host costs, through the lab's relay when
it adds one, to show the delay the benchmark ran with (asyncssh, the first host).

- echo: one session running `cat`; a line written, the same line read back: one round
  trip plus the SSH layers' work. Median (and minimum) of ECHOES.
- exec: `true` run on the open connection (a session opened, the command run, its exit
  status and close read back: about two round trips). Median of EXECS.
- connect: opening the connection (TCP, key exchange, authentication), once.

    python -m bench.ping INVENTORY
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from bench import floor
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory

ECHOES = 20
EXECS = 5
TIMEOUT = 120.0


async def _ping(spec: ConnectionSpec) -> dict:
    start = time.monotonic()
    async with floor.connect(spec) as conn:
        connect = time.monotonic() - start
        echoes = []
        async with conn.create_process("cat") as cat:
            for i in range(ECHOES + 1):  # the first opens the session: not counted
                line = f"ping {i}\n"
                sent = time.monotonic()
                cat.stdin.write(line)
                if await cat.stdout.readline() != line:
                    raise RuntimeError("the echo came back different")
                if i:
                    echoes.append(time.monotonic() - sent)
            cat.stdin.write_eof()
        execs = []
        for _ in range(EXECS):
            sent = time.monotonic()
            await conn.run("true", check=True)
            execs.append(time.monotonic() - sent)
    ms = lambda seconds: round(seconds * 1000, 2)  # noqa: E731
    return {
        "echo_ms": ms(statistics.median(echoes)),
        "echo_min_ms": ms(min(echoes)),
        "exec_ms": ms(statistics.median(execs)),
        "connect_ms": ms(connect),
    }


def ping(inventory_path: str) -> dict:
    """The measurements for the inventory's first host (see the module's docstring)."""
    inventory = load_inventory(inventory_path)
    spec = ConnectionSpec.from_host(inventory.select("all")[0])
    return asyncio.run(asyncio.wait_for(_ping(spec), TIMEOUT))


if __name__ == "__main__":
    print(ping(sys.argv[1]))
