"""Helpers of the fault-injection suite: a slow playbook, vnetctl as a real process,
and what is left on a lab host (its processes, its links)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.labhosts import wait_until
from vnetctl.hostside.boot import BOOT_MARK
from vnetctl.lab import LabState, host_exec

SLOW_TASKS = 400  # each changes eth1's MTU: a play that lasts seconds on 10 hosts
FIRST_MTU = 1400


def slow_playbook(path: Path, final_mtu: int, tasks: int = SLOW_TASKS) -> Path:
    """`tasks` link tasks on eth1, each changing its MTU, the last one to `final_mtu`.
    Every task is one kernel change: a host is never half-way through one."""
    mtus = [FIRST_MTU + (i % 2) * 100 for i in range(tasks - 1)] + [final_mtu]
    doc = [
        {
            "name": f"slow {final_mtu}",
            "hosts": "all",
            "tasks": [{"name": f"mtu {i}", "link": {"name": "eth1", "mtu": m}}
                      for i, m in enumerate(mtus)],
        }
    ]  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def start_vnetctl(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vnetctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a signal in a test reaches vnetctl only
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"vnetctl did not end within {timeout} s:\n{err}") from None
    return proc.returncode, out, err


def vnetctl_pids(lab: LabState, host: str) -> list[int]:
    """Our remote processes on a lab host: its namespace's processes running the stub."""
    listed = subprocess.run(
        ["ip", "netns", "pids", lab.host(host).namespace], capture_output=True, text=True
    ).stdout.split()
    found = []
    for pid in map(int, listed):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if BOOT_MARK.encode() in cmdline and b"python" in cmdline:
            found.append(pid)
    return found


def wait_all_started(lab: LabState, timeout: float = 30) -> None:
    """Every host runs our process: the play is under way everywhere."""
    wait_until(
        lambda: all(vnetctl_pids(lab, h) for h in lab.host_names), timeout, "every host started"
    )


def no_process_left(lab: LabState, timeout: float = 15) -> None:
    wait_until(
        lambda: not any(vnetctl_pids(lab, h) for h in lab.host_names),
        timeout,
        "no vnetctl process left on any host",
    )


def mtu(lab: LabState, host: str, link: str = "eth1") -> int:
    out = host_exec(lab.name, host, ["ip", "-j", "link", "show", link], check=True).stdout
    return json.loads(out)[0]["mtu"]


def session_pids(lab: LabState, host: str) -> list[int]:
    """The sshd processes serving sessions on a host: children of its listening sshd."""
    parent = lab.host(host).sshd_pid
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            children.append(int(entry))
    return children


def kill_sessions(lab: LabState, host: str) -> int:
    killed = 0
    for pid in session_pids(lab, host):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def per_host_counts(doc: dict, tasks: int) -> dict[str, dict]:
    """Every task of every host is accounted for, once."""
    for host, counts in doc["stats"].items():
        accounted = sum(v for k, v in counts.items() if k != "unreachable")
        assert accounted == tasks, (host, counts)
    return doc["stats"]
