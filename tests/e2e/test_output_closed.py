"""Output into a pipe whose reader has gone (`vnetctl run ... | head -3`): vnetctl ends
as a standard Unix tool does, by SIGPIPE (the shell shows 141), without a traceback
and without "Task exception was never retrieved"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vnetctl.drift.history import History
from vnetctl.drift.report import DriftReport, HostDrift, HostState

ROOT = Path(__file__).parents[2]
SITE = str(ROOT / "playbooks" / "site.yml")
MESH = str(ROOT / "playbooks" / "vxlan-mesh.yml")
VNETCTL = [sys.executable, "-m", "vnetctl"]
SIGPIPE_DEATH = -signal.SIGPIPE  # as subprocess reports a process the signal ended


def into_closed_pipe(*args: str, timeout: float = 120) -> tuple[int, str]:
    """Run vnetctl with stdout a pipe whose reader is already gone; (status, stderr)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [*VNETCTL, *args], stdout=writer, stderr=subprocess.PIPE, text=True,
            timeout=timeout, cwd=ROOT,
        )  # fmt: skip
    finally:
        os.close(writer)
    return done.returncode, done.stderr


def through_head(command: str, lines: int, timeout: float = 120) -> tuple[int, str, str]:
    """`command | head -LINES` in bash: (vnetctl's status, what head printed, stderr)."""
    script = f"{command} | head -{lines}; exit ${{PIPESTATUS[0]}}"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env=env,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def long_history(tmp_path) -> Path:
    """A history with more runs than a pipe's buffer holds lines of."""
    path = tmp_path / "drift.sqlite"
    with History(path) as history:
        for n in range(1500):
            report = DriftReport("p.yml", "i.yml", started=1.7e9 + n, duration=1.0)
            report.hosts = [HostDrift("h1", HostState.IN_SYNC, resources=1)]
            history.record(report, "check", "p.yml on i.yml")
    return path


def test_drift_history_into_head_stops_quietly(long_history):
    status, out, err = through_head(
        f"vnetctl drift history --history {long_history} --limit 1500", lines=2
    )
    assert status == 128 + signal.SIGPIPE, err
    assert len(out.splitlines()) == 2 and err == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["drift", "history", "--limit", "1500"],
        ["drift", "schedule", "remove", "--cron", "--name", "x", "--cron-dir", "/nonexistent"],
    ],
)
def test_a_reader_gone_before_the_output_ends_vnetctl_by_sigpipe(args, long_history):
    if "history" in args:
        args = [*args, "--history", str(long_history)]
    status, err = into_closed_pipe(*args)
    assert (status, err) == (SIGPIPE_DEATH, "")


@pytest.mark.lab
def test_run_into_head_stops_quietly(lab3, fresh_hosts):
    status, out, err = through_head(f"vnetctl run {SITE} -i {lab3.inventory_path}", lines=1)
    assert status == 128 + signal.SIGPIPE, err
    assert out.startswith("PLAY [VM networks]")
    assert "Traceback" not in err and "never retrieved" not in err and err == ""


@pytest.mark.lab
@pytest.mark.parametrize(
    "args",
    [
        ["run", SITE],
        ["run", SITE, "--format", "json"],
        ["drift", SITE, "--no-history"],
        ["mesh", "check", MESH],
        ["facts"],
        ["snapshot"],
    ],
    ids=lambda a: " ".join(x for x in a if not x.startswith("/")),
)
def test_commands_on_hosts_end_by_sigpipe_when_their_reader_is_gone(lab3, fresh_hosts, args):
    status, err = into_closed_pipe(*args, "-i", str(lab3.inventory_path))
    assert (status, err) == (SIGPIPE_DEATH, "")
