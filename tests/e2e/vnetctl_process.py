"""vnetctl as a separate process, as a shell or a timer runs it: with its output into a
pipe whose reader is gone, or one nobody reads while it is interrupted; and a lab host
whose run lock someone else holds."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vnetctl.lab import LabState, load_state
from vnetctl.lab.lab import in_host_argv

ROOT = Path(__file__).parents[2]
VENV_BIN = Path(sys.executable).parent
VNETCTL = [sys.executable, "-m", "vnetctl"]


def environment(state_dir: Path) -> dict[str, str]:
    """vnetctl on PATH, its drift history under `state_dir` (never the user's own)."""
    return dict(
        os.environ,
        PATH=f"{VENV_BIN}:{os.environ['PATH']}",
        VNETCTL_STATE_DIR=str(state_dir),
        COLUMNS="120",
        NO_COLOR="1",
    )


def status(returncode: int) -> int:
    """As a shell reports it: a process a signal ended is 128 + the signal."""
    return 128 - returncode if returncode < 0 else returncode


def into_closed_pipe(argv: list[str], env: dict, cwd: Path, timeout: float = 180) -> int:
    """Run with stdout and stderr a pipe whose reader has already gone; the status."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(argv, stdout=writer, stderr=writer, env=env, cwd=cwd,
                              stdin=subprocess.DEVNULL, timeout=timeout)  # fmt: skip
    finally:
        os.close(writer)
    return status(done.returncode)


def interrupted_while_writing(argv: list[str], env: dict, cwd: Path, timeout: float = 180) -> int:
    """Run with stdout and stderr a full pipe nobody reads: the process blocks at its first
    write, wherever that is; SIGINT it there, then read what it writes until it ends."""
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    try:
        while True:
            os.write(writer, b"." * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(writer, True)
    proc = subprocess.Popen(argv, stdout=writer, stderr=writer, env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    os.close(writer)
    deadline = time.monotonic() + timeout
    try:
        wchan = Path(f"/proc/{proc.pid}/wchan")
        while proc.poll() is None and not wchan.read_text().endswith("pipe_write"):
            assert time.monotonic() < deadline, f"{argv} never wrote"
            time.sleep(0.02)
        assert proc.poll() is None, f"{argv} ended before it was interrupted"
        proc.send_signal(signal.SIGINT)
        while proc.poll() is None:  # read until it ends (a daemon may keep the pipe open)
            assert time.monotonic() < deadline, f"{argv} did not end once interrupted"
            if select.select([reader], [], [], 0.1)[0]:
                os.read(reader, 65536)
        return status(proc.returncode)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(reader)


@contextmanager
def run_lock_held(lab: LabState, host: str) -> Iterator[None]:
    """Someone else holds `host`'s vnetctl lock exclusively (as an apply does)."""
    state = load_state(lab.name) or lab
    argv = ["flock", "-x", "/run/lock/vnetctl.lock", "sleep", "120"]
    holder = subprocess.Popen(in_host_argv(state, state.host(host), argv),
                              stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        probe = in_host_argv(state, state.host(host), ["flock", "-n", "/run/lock/vnetctl.lock",
                                                       "true"])  # fmt: skip
        deadline = time.monotonic() + 10
        while subprocess.run(probe, capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "the lock was never taken"
            time.sleep(0.05)
        yield
    finally:
        os.killpg(holder.pid, signal.SIGTERM)
        holder.wait(timeout=10)
