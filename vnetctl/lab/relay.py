"""A delaying TCP relay: every lab host's SSH path made `rtt` long (`lab up --rtt 25ms`).

This kernel has no netem, so the delay is added in user space. One process serves the
whole lab (asyncio, a listener per host on 127.0.0.1) and forwards each connection to
the host's sshd:

- every byte read from one side is written to the other RTT/2 later, in the order it
  was read: a delay line, never stop-and-wait, so throughput is kept (reading goes on
  while earlier bytes wait; up to BUFFER_LIMIT bytes are in flight per direction);
- a new connection reaches sshd 1.5 RTT after the client connected, and the client's
  first bytes with it: the client's own connect() returns at once, so this is where the
  TCP handshake's round trip is paid (SYN, SYN-ACK, then the first data);
- an EOF travels like data (half-close); a reset closes both sides at once;
- due times are kept by a clock thread (vnetctl.lab.relay_clock), not by the event
  loop's timers, which round to whole milliseconds;
- per connection the relay counts request/response turns: data from the server read
  after data from the client. Each turn is a round trip the client waited for, unless
  it pipelined requests (then fewer are counted), so it is a measure of what a tool
  costs per RTT. On close it appends one JSON line to its log:
  `{"event": "closed", "host", "seconds", "up", "down", "turns"}` (after an
  `{"event": "open", "host"}` line when it was accepted).

    python -m vnetctl.lab.relay CONFIG.json

CONFIG: `{"rtt_ms": 25, "log": PATH, "routes": [{"host": NAME, "listen": [ADDR, PORT],
"target": [ADDR, PORT]}, ...]}`; PORT 0: any free port. The ports it listens on are in
its `{"event": "listening", "ports": {NAME: PORT}}` record: bound once, never probed
first. The process runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import json
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO

from vnetctl.lab.relay_clock import Alarm, Clock

BUFFER_LIMIT = 4 * 1024 * 1024  # bytes waiting in one direction before reading pauses


@dataclass(frozen=True)
class Route:
    host: str
    listen: tuple[str, int]
    target: tuple[str, int]


class _DelayLine:
    """One direction of a relayed connection: bytes written `delay` after they were read."""

    def __init__(self, pair: _Pair, delay: float, source: _Side):
        self.pair, self.loop, self.delay, self.source = pair, pair.loop, delay, source
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self.sink: asyncio.Transport | None = None  # None until the server side exists
        self.timer: Alarm | None = None
        self.eof_delivered = False

    def push(self, data: bytes) -> None:  # b"": EOF
        self.queue.append((self.loop.time() + self.delay, data))
        self.queued += len(data)
        if self.queued > BUFFER_LIMIT:
            self.source.pause("buffer")
        self.schedule()

    def schedule(self) -> None:
        if self.timer is None and self.queue and self.sink is not None:
            self.timer = self.pair.relay.clock.call_at(self.queue[0][0], self.flush)

    def flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now and self.sink is not None:
            _, data = self.queue.popleft()
            if data:
                self.queued -= len(data)
                self.sink.write(data)
            else:
                if self.sink.can_write_eof():
                    self.sink.write_eof()
                self.eof_delivered = True
        if self.queued <= BUFFER_LIMIT // 2:
            self.source.resume("buffer")
        self.schedule()
        if self.eof_delivered:
            self.pair.delivered_eof()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Side(asyncio.Protocol):
    """One TCP connection of a relayed pair: the client's or the server's."""

    def __init__(self, pair: _Pair, name: str):
        self.pair, self.name = pair, name
        self.transport: asyncio.Transport | None = None
        self.paused: set[str] = set()
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.paused:  # asked before the connection existed
            transport.pause_reading()
        self.pair.made(self)

    def data_received(self, data: bytes) -> None:
        self.pair.received(self, data)

    def eof_received(self) -> bool:
        self.pair.received(self, b"")
        return True  # keep the transport half-open: the other direction goes on

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pair.lost(self, exc)

    def pause_writing(self) -> None:  # this side's socket is full: stop reading the other
        self.pair.other(self).pause("peer")

    def resume_writing(self) -> None:
        self.pair.other(self).resume("peer")

    def pause(self, reason: str) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.paused.add(reason)

    def resume(self, reason: str) -> None:
        if reason in self.paused:
            self.paused.discard(reason)
            if not self.paused and self.transport is not None and not self.closed:
                self.transport.resume_reading()


class _Pair:
    """A client connection and its server connection, with a delay line each way."""

    def __init__(self, relay: Relay, route: Route):
        self.relay, self.route, self.loop = relay, route, relay.loop
        self.client, self.server = _Side(self, "client"), _Side(self, "server")
        half = relay.rtt / 2
        self.up = _DelayLine(self, half, self.client)  # client -> server
        self.down = _DelayLine(self, half, self.server)  # server -> client
        self.opened = time.monotonic()
        self.sent = {"up": 0, "down": 0}
        self.turns, self.last = 0, ""
        self.connecting: Alarm | None = None
        self.connect_task: asyncio.Task | None = None
        self.client_eof = self.done = False

    def other(self, side: _Side) -> _Side:
        return self.server if side is self.client else self.client

    def made(self, side: _Side) -> None:
        if side is self.client:
            self.down.sink = side.transport
            self.relay.record({"event": "open", "host": self.route.host})
            handshake = self.loop.time() + 1.5 * self.relay.rtt
            self.connecting = self.relay.clock.call_at(handshake, self.connect)
        else:
            self.up.sink = side.transport
            self.up.flush()

    def connect(self) -> None:
        self.connecting = None
        if self.client_eof and not self.sent["up"]:  # a port probe: nothing to carry
            self.finish()
            return
        opening = self.loop.create_connection(lambda: self.server, *self.route.target)
        self.connect_task = self.loop.create_task(opening)
        self.connect_task.add_done_callback(self.connected)

    def connected(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:  # refused: as the host would
            self.finish(abort=True)

    def received(self, side: _Side, data: bytes) -> None:
        direction = "up" if side is self.client else "down"
        if data:
            self.sent[direction] += len(data)
            if direction == "down" and self.last == "up":
                self.turns += 1
            self.last = direction
        elif side is self.client:
            self.client_eof = True
        (self.up if direction == "up" else self.down).push(data)

    def delivered_eof(self) -> None:
        if self.up.eof_delivered and self.down.eof_delivered:
            self.finish()

    def lost(self, side: _Side, exc: Exception | None) -> None:
        # A reset, or a side closed: nothing more can be delivered either way.
        self.finish(abort=exc is not None)

    def finish(self, abort: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if self.connecting is not None:
            self.connecting.cancel()
        if self.connect_task is not None and not self.connect_task.done():
            self.connect_task.cancel()
        for line in (self.up, self.down):
            line.cancel()
        for side in (self.client, self.server):
            if side.transport is not None and not side.closed:
                side.transport.abort() if abort else side.transport.close()
        self.relay.closed(self)


class Relay:
    """Listeners for every route; `rtt` in seconds (each direction gets half)."""

    def __init__(self, routes: list[Route], rtt: float, log: TextIO | None = None):
        self.routes, self.rtt, self.log = routes, rtt, log
        self.loop = asyncio.get_running_loop()
        # The log is written by a thread of its own, in order: a write stalled by a busy
        # disk must never hold back the bytes in flight (nor the delay's accuracy).
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-log")
        self.clock = Clock(self.loop)
        self.servers: list[asyncio.Server] = []
        self.pairs: set[_Pair] = set()

    async def start(self) -> None:
        """Listen on every route's port; port 0, or a port something else took since it
        was recorded, gets one from the kernel. The `listening` record says which."""
        ports = {}
        for route in self.routes:
            try:
                server = await self._listen(route, route.listen[1])
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or route.listen[1] == 0:
                    raise
                server = await self._listen(route, 0)
            self.servers.append(server)
            ports[route.host] = server.sockets[0].getsockname()[1]
        self.record({"event": "listening", "routes": len(self.routes), "rtt_ms": self.rtt * 1e3,
                     "ports": ports})  # fmt: skip

    async def _listen(self, route: Route, port: int) -> asyncio.Server:
        return await self.loop.create_server(
            self._factory(route), route.listen[0], port, reuse_address=True
        )

    def _factory(self, route: Route) -> Callable[[], _Side]:
        def accept() -> _Side:
            pair = _Pair(self, route)
            self.pairs.add(pair)
            return pair.client

        return accept

    def closed(self, pair: _Pair) -> None:
        self.pairs.discard(pair)
        seconds = round(time.monotonic() - pair.opened, 4)
        up, down = pair.sent["up"], pair.sent["down"]
        self.record({"event": "closed", "host": pair.route.host, "seconds": seconds,
                     "up": up, "down": down, "turns": pair.turns})  # fmt: skip

    def record(self, entry: dict[str, Any]) -> None:
        if self.log is not None:
            self.writer.submit(self._write, json.dumps(entry) + "\n")

    def _write(self, line: str) -> None:
        assert self.log is not None
        self.log.write(line)
        self.log.flush()

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for pair in list(self.pairs):
            pair.finish(abort=True)
        for server in self.servers:
            await server.wait_closed()
        self.clock.stop()
        self.writer.shutdown(wait=True)  # every record written


def load_config(path: str) -> tuple[list[Route], float, str]:
    with open(path) as f:
        config = json.load(f)
    routes = [
        Route(r["host"], _endpoint(r["listen"]), _endpoint(r["target"])) for r in config["routes"]
    ]
    return routes, float(config["rtt_ms"]) / 1000.0, config["log"]


def _endpoint(pair: list) -> tuple[str, int]:
    return str(pair[0]), int(pair[1])


async def serve(config_path: str) -> None:
    routes, rtt, log_path = load_config(config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with open(log_path, "a") as log:
        relay = Relay(routes, rtt, log)
        await relay.start()
        await stop.wait()
        await relay.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[-2])
    asyncio.run(serve(sys.argv[1]))
