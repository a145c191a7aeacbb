"""Timing a command fairly: wall time, the controller CPU it and its children used, and
the SSH connections and sessions it opened per host (from the lab sshds' logs)."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from vnetctl.lab import LabState

RUN_TIMEOUT = 900.0


@dataclass
class Sample:
    wall: float
    cpu: float  # controller user + system seconds, children included
    connections: float  # per host
    sessions: float  # per host
    ok: bool
    error: str = ""


def sshd_counts(lab: LabState) -> tuple[int, int]:
    """Connections (accepted public keys) and sessions (exec channels) so far, all hosts."""
    connections = sessions = 0
    for host in lab.hosts:
        try:
            text = host.sshd_log.read_text(errors="replace")
        except FileNotFoundError:
            continue
        connections += text.count("Accepted publickey for ")
        sessions += text.count("Starting session: ")
    return connections, sessions


def close_control_masters(control_dir: Path) -> None:
    """OpenSSH ControlMaster sockets (Ansible's) would let the next run skip connecting."""
    for socket in control_dir.glob("*"):
        subprocess.run(
            ["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "x"],
            capture_output=True,
            timeout=10,
        )
        socket.unlink(missing_ok=True)


def failure_summary(output: str) -> str:
    """The lines that say what went wrong, not the deprecation chatter, on one line."""
    keep = [
        line.strip()
        for line in output.splitlines()
        if line.strip() and "DEPRECATION" not in line and "WARNING" not in line
    ]
    wanted = [x for x in keep if "Error" in x or "error" in x or "fatal" in x]
    return " | ".join(wanted or keep)[-400:]


def run_timed(
    argv: list[str], env: dict[str, str], lab: LabState, cwd: Path, ok_codes=(0,)
) -> Sample:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    conn0, sess0 = sshd_counts(lab)
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True,
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
        ok, error = done.returncode in ok_codes, failure_summary(done.stdout + done.stderr)
    except subprocess.TimeoutExpired:
        ok, error = False, f"timed out after {RUN_TIMEOUT:.0f}s"
    wall = time.monotonic() - start
    time.sleep(0.3)  # let sshd write its last lines
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    conn1, sess1 = sshd_counts(lab)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    n = max(1, len(lab.hosts))
    return Sample(wall, cpu, (conn1 - conn0) / n, (sess1 - sess0) / n, ok, "" if ok else error)
