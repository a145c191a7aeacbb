"""The round-trip relay of the lab (vnetctl.lab.relay), against a local echo server:
the delay it adds, the order and wholeness of the bytes, pipelining, half-close, the
turns it counts. Everything runs on 127.0.0.1 and is bounded by TIMEOUT."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import socket
import time

import pytest

from vnetctl.errors import InputError
from vnetctl.lab.relay import Relay, Route
from vnetctl.lab.state import parse_rtt

TIMEOUT = 20.0


class EchoServer:
    """Echoes what it reads; at EOF it says `bye` and closes. Records when it accepted."""

    def __init__(self):
        self.accepted: list[float] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.accepted.append(time.monotonic())
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write(b"bye")
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def relayed(rtt_ms: float, target_port: int | None = None, log=None):
    """(relay port, echo server) with the relay in front of a fresh echo server."""
    echo = EchoServer()
    server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    port = target_port or server.sockets[0].getsockname()[1]
    relay = Relay([Route("h1", ("127.0.0.1", 0), ("127.0.0.1", port))], rtt_ms / 1000, log)
    await relay.start()
    try:
        yield relay.servers[0].sockets[0].getsockname()[1], echo
    finally:
        await relay.close()
        server.close()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


async def round_trip(reader, writer, line: bytes) -> float:
    start = time.monotonic()
    writer.write(line)
    assert await reader.readexactly(len(line)) == line
    return time.monotonic() - start


def test_every_round_trip_takes_at_least_the_rtt_and_not_twice_it():
    rtt = 0.1

    async def scenario():
        async with relayed(rtt * 1000) as (port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await round_trip(reader, writer, b"hello\n")  # the first pays the handshake
            times = [await round_trip(reader, writer, b"ping %d\n" % i) for i in range(5)]
            writer.close()
            return times

    times = run(scenario())
    assert min(times) >= rtt, times
    assert min(times) < 2 * rtt, times  # a delay line, not a store-and-wait per chunk


def test_a_new_connection_reaches_the_server_after_the_handshakes_round_trip():
    rtt = 0.1

    async def scenario():
        async with relayed(rtt * 1000) as (port, echo):
            start = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await round_trip(reader, writer, b"x")
            writer.close()
            return echo.accepted[0] - start, time.monotonic() - start

    accepted, first_answer = run(scenario())
    assert accepted >= 1.5 * rtt  # SYN, SYN-ACK, then the ACK with the first data
    assert first_answer >= 2 * rtt  # then half a round trip back


def test_bytes_arrive_whole_and_in_order_both_ways():
    chunks = [random.Random(7).randbytes(random.Random(i).randint(1, 70000)) for i in range(60)]
    sent = b"".join(chunks)

    async def scenario():
        async with relayed(20) as (port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)

            async def write_all():
                for i, chunk in enumerate(chunks):
                    writer.write(bytes([i % 251]) + chunk)
                    await writer.drain()
                writer.write_eof()

            writer_task = asyncio.create_task(write_all())
            received = await reader.read()  # to the server's EOF
            await writer_task
            writer.close()
            return received

    expected = b"".join(bytes([i % 251]) + c for i, c in enumerate(chunks)) + b"bye"
    received = run(scenario())
    assert len(received) == len(sent) + len(chunks) + 3
    assert received == expected


def test_writes_are_pipelined_not_stop_and_wait():
    rtt, lines = 0.1, 20

    async def scenario():
        async with relayed(rtt * 1000) as (port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await round_trip(reader, writer, b"warm\n")
            sent, received = [], []

            async def read_all():
                for _ in range(lines):
                    await reader.readline()
                    received.append(time.monotonic())

            reading = asyncio.create_task(read_all())
            for i in range(lines):
                writer.write(b"line %d\n" % i)
                sent.append(time.monotonic())
                await asyncio.sleep(0.01)
            await reading
            writer.close()
            return sent, received

    sent, received = run(scenario())
    assert all(back - out >= rtt for out, back in zip(sent, received, strict=True))
    # stop-and-wait would need lines x RTT (2 s); a delay line about RTT + the sending
    assert received[-1] - sent[0] < lines * rtt / 2


def test_a_half_close_travels_and_the_other_direction_goes_on():
    async def scenario():
        async with relayed(30) as (port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"abc")
            writer.write_eof()  # the server sees EOF, then answers on the open half
            received = await reader.read()
            writer.close()
            return received

    assert run(scenario()) == b"abcbye"


def test_a_closed_connection_is_logged_with_its_bytes_and_turns():
    log = io.StringIO()

    async def scenario():
        async with relayed(10, log=log) as (port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for i in range(4):
                await round_trip(reader, writer, b"request %d\n" % i)
            writer.write_eof()
            assert await reader.read() == b"bye"
            writer.close()
            for _ in range(100):  # the relay closes both sides a half round trip later
                if '"closed"' in log.getvalue():
                    break
                await asyncio.sleep(0.02)

    run(scenario())
    entries = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [e["event"] for e in entries] == ["listening", "open", "closed"]
    closed = entries[-1]
    assert closed["host"] == "h1" and closed["turns"] == 4
    assert closed["up"] == closed["down"] - 3 == sum(len(b"request %d\n" % i) for i in range(4))


def test_a_refused_target_closes_the_client_and_a_probe_never_reaches_it():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]  # nothing listens there once closed

    async def refused():
        async with relayed(20, target_port=closed_port) as (port, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello")
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read() == b""
            writer.close()

    async def probe():
        async with relayed(20) as (port, echo):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await asyncio.sleep(0.1)  # past the 1.5 RTT the relay waits before connecting
            return echo.accepted

    run(refused())
    assert run(probe()) == []


@pytest.mark.parametrize(
    ("text", "ms"), [("25ms", 25.0), ("25", 25.0), ("0.2s", 200.0), ("0", 0.0), ("1.5ms", 1.5)]
)
def test_round_trip_times_are_read_in_milliseconds(text, ms):
    assert parse_rtt(text) == ms


@pytest.mark.parametrize("text", ["fast", "-5ms", "25 us", "", "10000ms"])
def test_a_bad_round_trip_time_is_refused(text):
    with pytest.raises(InputError, match="round-trip time"):
        parse_rtt(text)
