"""Running commands for the lab, and finding/ending the processes that belong to it."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vnetctl.errors import VnetctlError

COMMAND_TIMEOUT = 60.0
PARALLEL_COMMANDS = 16


class LabError(VnetctlError):
    """The lab could not be built or taken down (a command failed, a daemon did not start)."""


def run(
    argv: Sequence[str],
    input: str | None = None,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(argv)}` did not finish within {timeout:.0f}s") from None
    if check and done.returncode != 0:
        raise LabError(
            f"`{shlex.join(argv)}` failed (exit {done.returncode}): {done.stderr.strip()}"
        )
    return done


def run_many(
    jobs: Sequence[tuple[Sequence[str], str | None]], check: bool = True
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent (argv, stdin) jobs a few at a time; results in the jobs' order."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(PARALLEL_COMMANDS, len(jobs))) as pool:
        return list(pool.map(lambda job: run(job[0], input=job[1], check=check), jobs))


def ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    """Apply many `ip` commands in one process (in `netns` when given)."""
    if commands:
        run(ip_batch_argv(netns), input="\n".join(commands) + "\n")


def ip_batch_argv(netns: str | None = None) -> list[str]:
    return ["ip", *(["-n", netns] if netns else []), "-batch", "-"]


def spawn_daemon(
    argv: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: str | None = None
) -> int:
    """Start a long-lived process in a session of its own, stdin from /dev/null, stdout
    and stderr appended to `log`; its PID. No Popen object is kept (none would ever be
    waited for, and each would warn when collected); `pid_cmdline` reaps it once it exits.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    output = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, output, 1),
            (os.POSIX_SPAWN_DUP2, output, 2),
        ]
        command = list(argv)
        if cwd is not None:  # posix_spawn has no chdir action before Python 3.13's
            command = ["sh", "-c", 'cd "$0" && exec "$@"', cwd, *command]
        try:
            return os.posix_spawnp(
                command[0], command, os.environ if env is None else env,
                file_actions=actions, setsid=True,
            )  # fmt: skip
        except FileNotFoundError:
            raise LabError(f"{command[0]}: command not found") from None
    finally:
        os.close(output)


def pid_cmdline(pid: int) -> str | None:
    """The command line of a live process; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the state letter follows "(comm)", and comm may contain spaces or parentheses
            if f.read().rpartition(")")[2].split()[0] == "Z":
                reap(pid)
                return None
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def reap(pid: int) -> None:
    """Collect the exit status of a process this Python process started (no-op otherwise)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pids: Iterable[int], grace: float = 2.0) -> None:
    """SIGTERM the processes, wait up to `grace` seconds, then SIGKILL the ones still alive."""
    pending = set(pids)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if pid_cmdline(pid) is not None}
        if pending:
            time.sleep(0.02)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pending:
        for _ in range(100):
            if pid_cmdline(pid) is None:
                break
            time.sleep(0.01)


def pids_in_namespaces(netns_paths: Iterable[str]) -> list[int]:
    """Processes whose network namespace is one of the given named namespaces.

    Matched by namespace identity (inode of the /run/netns file), not by any name pattern.
    """
    wanted: set[str] = set()
    for path in netns_paths:
        with contextlib.suppress(FileNotFoundError):
            wanted.add(f"net:[{os.stat(path).st_ino}]")
    if not wanted:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/net") in wanted:
                found.append(int(entry))
        except OSError:
            continue
    return found
