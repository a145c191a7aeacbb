"""A host's process for one play, started on this machine exactly as a host starts it
(`remote_command`), fed the stdin the controller would send; its pipes always closed."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from vnetctl.runner.payload import remote_command


@contextmanager
def host_process(stdin: str, command: str | None = None, **popen) -> Iterator[subprocess.Popen]:
    """The running process, its stdin written and kept open (EOF means "stop", as when
    the controller goes), the login shell's PID line read; killed if still running when
    the block ends."""
    with subprocess.Popen(
        command or remote_command(sys.executable),
        shell=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    ) as proc:
        try:
            proc.stdin.write(stdin)
            proc.stdin.flush()
            # the login shell's PID, which the interpreter took over by exec
            assert int(proc.stdout.readline()) == proc.pid
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def records_until_done(proc: subprocess.Popen, timeout: float = 30) -> list[dict]:
    """Every record up to {"done"}; then stdin is closed, as the controller does, and
    the process must end with 0."""
    records, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and not (records and records[-1].get("done")):
        line = proc.stdout.readline()
        if not line:
            break
        records.append(json.loads(line))
    proc.stdin.close()
    assert proc.wait(timeout=timeout) == 0, proc.stderr.read()
    return records


def acknowledge(proc: subprocess.Popen) -> None:
    """One "+" for a start record, as the runner writes it: unbuffered, and nothing if
    the host has ended since (it does not wait for the acknowledgement of its last task;
    a buffered "+" would then break the pipe when stdin is closed)."""
    with contextlib.suppress(BrokenPipeError):
        os.write(proc.stdin.fileno(), b"+")
