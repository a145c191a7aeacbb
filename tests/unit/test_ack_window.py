"""The host starts a task only while fewer than `window` of its started tasks are
unacknowledged by the controller: a host cut off from the controller (no EOF comes
through a cut cable) runs at most that many tasks the controller never heard of, which
the controller reports `unknown`, never `not started` (issue 31)."""

from __future__ import annotations

import json
import os
import select
import time

from host_process import host_process

from vnetctl.catalog import Catalog
from vnetctl.runner.payload import LockSpec, build_stdin

CATALOG = Catalog()


class Records:
    """The host's records as they come, from its stdout's descriptor (a buffered file
    would hide lines it read ahead from select)."""

    def __init__(self, proc):
        self.fd, self.pending = proc.stdout.fileno(), b""

    def next(self, timeout: float) -> dict | None:
        """The next record within `timeout` seconds, or None (the host is waiting)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)


def test_the_host_waits_for_acknowledgements_beyond_its_window(tmp_path):
    tasks = [{"index": i, "module": "link", "args": {"name": "lo"}} for i in range(6)]
    lock = LockSpec(wait=1, directory=str(tmp_path))
    stdin = build_stdin(CATALOG, tasks, check=True, lock=lock, window=2)
    with host_process(stdin) as proc:
        records = Records(proc)
        while (record := records.next(10)) is not None and record.get("start") != 1:
            pass
        assert record == {"start": 1}
        assert records.next(10)["index"] == 1  # task 1's result
        assert records.next(1.5) is None  # two started, none acknowledged: it waits
        proc.stdin.write("+")  # start 0 acknowledged
        proc.stdin.flush()
        assert records.next(10) == {"start": 2}
        assert records.next(10)["index"] == 2
        assert records.next(1.5) is None
        proc.stdin.close()  # EOF while waiting: the host stops, starting nothing more
        assert records.next(30) == {"done": True, "stopped": True}
        assert records.next(5) is None
        assert proc.wait(timeout=30) == 0


def test_without_a_window_the_host_waits_for_nothing(tmp_path):
    tasks = [{"index": i, "module": "link", "args": {"name": "lo"}} for i in range(12)]
    lock = LockSpec(wait=1, directory=str(tmp_path))
    with host_process(build_stdin(CATALOG, tasks, check=True, lock=lock)) as proc:
        records, seen = Records(proc), []
        while (record := records.next(10)) is not None and not record.get("done"):
            seen.append(record)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    assert len([r for r in seen if "start" in r]) == 12
