"""What a run is given from outside: its options, who hears it as it goes on (a
reporter), and the stop request that SIGINT/SIGTERM turn into (vnetctl.fleet.execute)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from vnetctl.runner.results import TaskResult
from vnetctl.transport.base import RemoteProcess


@dataclass
class RunOptions:
    check: bool = False
    forks: int = 50
    transport: str = "asyncssh"  # a host's vnetctl_transport overrides it
    accept_new_host_keys: bool = False
    retries: int = 2
    timeout: float = 3600.0  # seconds per host per play; a host's vnetctl_timeout wins
    lock_wait: float = 60.0  # seconds to wait for another run's host lock
    trace: bool = False  # results say the commands their task ran (run -vvv)
    stop_grace: float = 30.0  # after a stop request: time for tasks in flight to end
    confirm_timeout: float | None = None  # commit confirmed for every play (a play's own wins)
    confirm_root: str | None = None  # where hosts keep the timer's state (None: /run/lock)
    # check mode: a task the real run would refuse (it cuts a host off) fails as there;
    # False for drift, which only compares
    refusals: bool = True
    label: str = ""  # who runs (user@machine, command): shown to runs finding the lock
    # hosts whose lock this run's own watchdogs hold (a rolling batch awaiting its health
    # gates): the gates' plays there take no lock of their own
    borrowed_locks: frozenset[str] = frozenset()
    # what is known of hosts' code caches (vnetctl.runner.host_code): where the controller
    # keeps it (None: ~/.cache/vnetctl/hosts) and the hosts' cache directory (None: boot.CACHE_DIR)
    code_store: str | None = None
    host_code_cache: str | None = None
    # worker processes (vnetctl.fleet.workers): 1 none, 0 `auto` (by the fleet's size)
    workers: int = 1


class Events(Protocol):
    """What a reporter hears while the run goes on."""

    def play_started(self, name: str, hosts: Sequence[str], task_count: int) -> None: ...
    def task_done(self, result: TaskResult) -> None: ...
    def note(self, host: str, text: str) -> None: ...


class NullEvents:
    """For callers that report at the end (--format json, drift, facts): hears nothing."""

    def play_started(self, name: str, hosts: Sequence[str], task_count: int) -> None:
        pass

    def task_done(self, result: TaskResult) -> None:
        pass

    def note(self, host: str, text: str) -> None:
        pass


def stop_message(signum: int, again: bool, grace: float) -> str:
    """What an operator is told on SIGINT/SIGTERM (`again`: a second one)."""
    if again:
        return "vnetctl: stopping now"
    return (f"vnetctl: {signal.Signals(signum).name}: starting no new task; tasks in "
            f"flight get {grace:g} s to end (again to stop now)")  # fmt: skip


class StopControl:
    """A stop request, shared by a runner and the runners it makes for fact gathering."""

    def __init__(self) -> None:
        self.requested = False
        self.deadline: float | None = None  # loop time by which tasks in flight must end
        self.processes: dict[str, RemoteProcess] = {}

    def request(self, grace: float) -> None:
        """First call: stop gracefully; a second one: stop now."""
        now = asyncio.get_running_loop().time()
        self.deadline = now if self.requested else now + grace
        self.requested = True
        for process in self.processes.values():
            process.close_stdin()  # the host ends its task in flight and starts no other

    def expired(self) -> bool:
        return self.deadline is not None and asyncio.get_running_loop().time() >= self.deadline
