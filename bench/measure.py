"""Timing a command fairly: wall time, the controller CPU it and its children used, its
peak memory (bench.rss), the
SSH connections and sessions it opened per host (from the lab sshds' logs) and, where
the lab adds a round trip, the round trips it made per host (the request/response
turns the lab's relay counted on its connections: vnetctl.lab.relay)."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.rss import PeakMemory
from vnetctl.lab import LabState
from vnetctl.lab.relay_process import wait_settled

RUN_TIMEOUT = 900.0
SETTLE_TIMEOUT = 15.0  # for the relay to log the run's last connections


@dataclass
class Sample:
    wall: float
    cpu: float  # controller user + system seconds, children included
    connections: float  # per host
    sessions: float  # per host
    ok: bool
    error: str = ""
    round_trips: float | None = None  # per host; None where the lab adds no round trip
    peak_rss_mib: float = 0.0  # the command's process tree, summed (bench.rss)
    peak_pss_mib: float = 0.0


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


class RelayTurns:
    """The request/response turns the lab's relay logs, counted run by run: every
    connection opened since the last count is waited for (a closing connection is
    logged up to a round trip later), so none is counted twice or missed."""

    def __init__(self, lab: LabState):
        self.lab = lab
        self.offset = lab.relay_log.stat().st_size if lab.rtt_ms > 0 else None

    def per_host(self) -> float | None:
        """Turns per host since the last call (None: the lab adds no round trip)."""
        if self.offset is None:
            return None
        entries = wait_settled(self.lab.relay_log, self.offset, SETTLE_TIMEOUT)
        self.offset = self.lab.relay_log.stat().st_size
        turns = sum(e["turns"] for e in entries if e.get("event") == "closed")
        return turns / max(1, len(self.lab.hosts))


def run_timed(
    argv: list[str], env: dict[str, str], lab: LabState, cwd: Path, ok_codes=(0,),
    control_dir: Path | None = None, turns: RelayTurns | None = None,
) -> Sample:  # fmt: skip
    """Run argv once. ControlMaster sockets in `control_dir` are closed after the run
    (outside the time measured), so that its connections are counted and none is
    left for the next run; `turns` counts its round trips."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    conn0, sess0 = sshd_counts(lab)
    start = time.monotonic()
    with subprocess.Popen(
        argv, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        memory = PeakMemory(process.pid)
        try:
            out, err = process.communicate(timeout=RUN_TIMEOUT)
            ok, error = process.returncode in ok_codes, failure_summary(out + err)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            ok, error = False, f"timed out after {RUN_TIMEOUT:.0f}s"
        finally:
            memory.stop()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if control_dir is not None:
        close_control_masters(control_dir)
    trips = turns.per_host() if turns is not None else None
    time.sleep(0.3)  # let sshd write its last lines
    conn1, sess1 = sshd_counts(lab)
    n = max(1, len(lab.hosts))
    sessions = (sess1 - sess0) / n
    return Sample(wall, cpu, (conn1 - conn0) / n, sessions, ok, "" if ok else error, trips,
                  memory.rss_mib, memory.pss_mib)  # fmt: skip
