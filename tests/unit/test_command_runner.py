"""The host library's one runner of commands (vnet_core.run_status): what a command
prints, its status, the stdin it is fed and the timeout, with stdout in a file in memory
(read once the command ended) and, where the kernel has none, in a pipe."""

from __future__ import annotations

import os
import sys

import pytest

from vnetctl.catalog import Catalog

core = Catalog().host_lib().vnet_core
BIG = 300_000  # bytes: more than a pipe holds, written in many pieces


@pytest.fixture(params=["memory file", "pipe"])
def runner(request, monkeypatch):
    if request.param == "pipe":
        monkeypatch.setattr(core, "_output_file", lambda: None)
    return core


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_stdout_stderr_and_status_come_back_whole(runner):
    before = open_fds()
    code = (f"import sys\nfor i in range({BIG // 100}): sys.stdout.write('x' * 100); "
            "sys.stdout.flush()\nsys.stderr.write('warned'); sys.exit(3)")  # fmt: skip
    status, out, err = runner.run_status([sys.executable, "-c", code])
    assert (status, len(out), set(out), err) == (3, BIG, {"x"}, "warned")
    assert open_fds() == before  # nothing left open


def test_stdin_is_fed_and_read_back(runner):
    data = "line\n" * (BIG // 5)
    code = "import sys; sys.stdout.write(sys.stdin.read())"
    assert runner.run([sys.executable, "-c", code], stdin=data) == data


def test_a_failing_command_says_its_error(runner):
    with pytest.raises(core.ModuleError, match="boom"):
        runner.run([sys.executable, "-c", "import sys; sys.exit('boom')"])


def test_a_command_over_its_time_is_killed(runner):
    before = open_fds()
    with pytest.raises(core.ModuleError, match="did not finish within 0.3 s"):
        runner.run_status([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.3)
    assert open_fds() == before


def test_a_missing_command_is_said_and_leaves_nothing_open(runner):
    before = open_fds()
    with pytest.raises(core.ModuleError, match="command not found on host"):
        runner.run(["vnetctl-no-such-command"])
    assert open_fds() == before


def test_stdout_goes_to_a_file_in_memory_not_a_pipe():
    code = "import os, stat; print(stat.S_ISFIFO(os.fstat(1).st_mode))"
    assert core.run([sys.executable, "-c", code]).strip() == "False"
