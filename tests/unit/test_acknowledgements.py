"""Start records that arrive together are acknowledged in one write (one SSH packet
instead of one per task), and the lines a transport hands over are whole lines."""

from __future__ import annotations

import asyncio

from tests.unit.test_runner import FakeProcess, FakeTransport, Recorder, play, specs_for
from vnetctl.catalog import Catalog
from vnetctl.runner.control import RunOptions
from vnetctl.runner.host_play import ACK_WINDOW
from vnetctl.runner.pool import ConnectionPool
from vnetctl.runner.results import Status
from vnetctl.runner.runner import Runner
from vnetctl.transport.asyncssh_transport import AsyncsshProcess


class ChunkedProcess(FakeProcess):
    """Hands over every line that has arrived at once, as an SSH transport that reads
    what its buffer holds does."""

    async def readlines(self):
        lines = [await self.lines.get()]
        while not self.lines.empty():
            lines.append(self.lines.get_nowait())
        for item in lines:
            if isinstance(item, Exception):
                raise item
        return [line for line in lines if line]


class ChunkedTransport(FakeTransport):
    async def connect(self, target, options):
        connection = await super().connect(target, options)
        connection.start = self._start(connection)
        return connection

    def _start(self, connection):
        async def start(command):
            self.log.append(("exec", connection.host))
            return ChunkedProcess(connection.host, connection.behaviour, self.log)

        return start


def test_start_records_read_together_are_acknowledged_in_one_write():
    log, hosts = [], ["h1"]
    specs, options = specs_for(hosts), RunOptions(forks=1)
    transports = {"asyncssh": ChunkedTransport({"h1": "burst"}, log)}
    pool = ConnectionPool(specs, options, transports=transports)
    runner = Runner(Catalog(), specs, options, Recorder(), pool)
    result = asyncio.run(runner.run([play("a", hosts, ACK_WINDOW + 2)]))
    assert [r.status for r in result.results] == [Status.CHANGED] * (ACK_WINDOW + 2)
    process = next(e[1] for e in log if e[0] == "process")
    # the host ran ahead to the window; the controller read all of it, then answered once
    assert process.ack_writes[0] == ACK_WINDOW
    assert sum(process.ack_writes) == ACK_WINDOW + 2
    assert len(process.ack_writes) == 2


class Chunks:
    """asyncssh's stdout reader: read(n) gives what has arrived, '' at EOF."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    async def read(self, n):
        return self.chunks.pop(0) if self.chunks else ""


def lines_of(chunks):
    process = AsyncsshProcess.__new__(AsyncsshProcess)
    process._partial = ""
    process._process = type("P", (), {"stdout": Chunks(chunks)})()

    async def all_reads():
        reads = []
        while lines := await process.readlines():
            reads.append(lines)
        return reads

    return asyncio.run(all_reads())


def test_asyncssh_lines_are_whole_however_the_bytes_arrive():
    reads = lines_of(['{"start": 0}\n{"ind', 'ex": 0}\n', "12", "3\n", '{"done": true}'])
    assert reads == [['{"start": 0}\n'], ['{"index": 0}\n'], ["123\n"], ['{"done": true}']]
    assert lines_of(["a\nb\n\n"]) == [["a\n", "b\n", "\n"]]
    assert lines_of([]) == []
