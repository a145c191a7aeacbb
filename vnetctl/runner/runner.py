"""Runs rendered plays on hosts: one SSH connection per host for the whole run, one
remote process per host per play, bounded concurrency, results streamed as they come.

Plays run in order across the fleet (as ansible-playbook does); a host that failed or
was unreachable takes no part in later plays, and never stops the other hosts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from vnetctl.catalog import Catalog
from vnetctl.playbook.adhoc import adhoc_plan
from vnetctl.runner.payload import build_stdin, remote_command
from vnetctl.runner.results import RunResult, Status, TaskResult
from vnetctl.secrets import redact_result
from vnetctl.transport.base import (
    Connection,
    RemoteFailure,
    Target,
    Transport,
    TransportOptions,
    Unreachable,
)
from vnetctl.transport.registry import load_transport

if TYPE_CHECKING:
    from vnetctl.inventory.connection import ConnectionSpec


@dataclass
class RunOptions:
    check: bool = False
    forks: int = 50
    transport: str = "asyncssh"  # a host's vnetctl_transport overrides it
    accept_new_host_keys: bool = False
    retries: int = 2


Prepare = Callable[["Runner", Sequence], Awaitable[None]]


class Events(Protocol):
    """What a reporter hears while the run goes on."""

    def play_started(self, name: str, hosts: Sequence[str], task_count: int) -> None: ...
    def task_done(self, result: TaskResult) -> None: ...


def target_for(host: str, spec: ConnectionSpec) -> Target:
    return Target(
        name=host,
        address=spec.address,
        port=spec.port,
        user=spec.user,
        key_file=spec.key_file,
        known_hosts=spec.known_hosts,
        connect_timeout=spec.connect_timeout,
    )


class _Quiet:
    def play_started(self, name: str, hosts: Sequence[str], task_count: int) -> None:
        pass

    def task_done(self, result: TaskResult) -> None:
        pass


class ConnectionPool:
    """One connection per host, opened on first use and kept for the run."""

    def __init__(
        self,
        specs: dict[str, ConnectionSpec],
        options: RunOptions,
        transports: dict[str, Transport] | None = None,
    ):
        self._specs = specs
        self._options = options
        self._transports = dict(transports or {})
        self._open: dict[str, Connection] = {}

    async def get(self, host: str) -> Connection:
        if host not in self._open:
            spec = self._specs[host]
            name = spec.transport or self._options.transport
            if name not in self._transports:
                self._transports[name] = load_transport(name)
            transport = self._transports[name]
            opts = TransportOptions(self._options.accept_new_host_keys, self._options.retries)
            self._open[host] = await transport.connect(target_for(host, spec), opts)
        return self._open[host]

    async def close_all(self) -> None:
        conns, self._open = list(self._open.values()), {}
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


class Runner:
    def __init__(
        self,
        catalog: Catalog,
        specs: dict[str, ConnectionSpec],
        options: RunOptions,
        events: Events,
        pool: ConnectionPool | None = None,
    ):
        self.catalog = catalog
        self.specs = specs
        self.options = options
        self.events = events
        self.pool = pool or ConnectionPool(specs, options)
        self.result = RunResult()
        self._out: set[str] = set()  # failed or unreachable: no later plays

    async def run(self, plans: Sequence, prepare: Prepare | None = None) -> RunResult:
        """plans: PlayPlan objects (play, hosts, tasks per host), in playbook order.

        `prepare(runner, plans)` runs first, on the same connections: fleet-level
        expansion that needs facts (e.g. VXLAN peers) and may refuse with InputError
        before any task runs. Connections are closed at the end."""
        try:
            if prepare is not None:
                await prepare(self, plans)
            return await self.run_plays(plans)
        finally:
            await self.pool.close_all()

    async def run_plays(self, plans: Sequence) -> RunResult:
        """Run plays in order, leaving connections open for a further phase."""
        self.result.hosts = list(
            dict.fromkeys([*self.result.hosts, *(h for p in plans for h in p.hosts)])
        )
        limit = asyncio.Semaphore(max(1, self.options.forks))
        for plan in plans:
            hosts = [h for h in plan.hosts if h not in self._out and plan.tasks.get(h)]
            count = max((len(plan.tasks[h]) for h in hosts), default=0)
            self.events.play_started(plan.play.display_name, hosts, count)
            await asyncio.gather(*(self._guarded(limit, plan, h) for h in hosts))
        return self.result

    async def gather_facts(self, hosts: Sequence[str]) -> dict[str, dict | str]:
        """Each host's facts (or why not), read-only and reported to no one."""
        plan = adhoc_plan("facts", {}, list(hosts), name="gather facts")
        options = dataclasses.replace(self.options, check=True)
        silent = Runner(self.catalog, self.specs, options, _Quiet(), self.pool)
        limit = asyncio.Semaphore(max(1, self.options.forks))
        await asyncio.gather(*(silent._guarded(limit, plan, h) for h in hosts))
        return {
            r.host: r.data.get("facts", f"{r.status.value}: {r.msg}") for r in silent.result.results
        }

    async def _guarded(self, limit: asyncio.Semaphore, plan, host: str) -> None:
        async with limit:
            await self._run_host(plan, host)

    async def _run_host(self, plan, host: str) -> None:
        tasks = plan.tasks[host]
        play = plan.play.display_name
        spec = self.specs[host]
        pending = {t.index: t for t in tasks}
        try:
            conn = await self.pool.get(host)
            stdin = build_stdin(
                self.catalog,
                [{"index": t.index, "module": t.module, "args": t.args} for t in tasks],
                self.options.check,
            )
            command = remote_command(spec.python, spec.become, spec.become_user)
            async for line in conn.stream(command, stdin):
                self._record_line(host, play, pending, line)
            if pending:
                raise RemoteFailure(0, "remote side stopped before reporting every task")
        except Unreachable as exc:
            self.result.unreachable[host] = str(exc)
            self._finish(host, play, pending, Status.UNREACHABLE, str(exc))
        except RemoteFailure as exc:
            self._finish(host, play, pending, Status.FAILED, str(exc))
        except (OSError, EOFError) as exc:  # connection lost mid-play
            self.result.unreachable[host] = f"connection lost: {exc}"
            self._finish(host, play, pending, Status.UNREACHABLE, f"connection lost: {exc}")

    def _record_line(self, host: str, play: str, pending: dict, line: str) -> None:
        if not line.strip():  # a tool run by a module may leave a bare newline
            return
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise RemoteFailure(None, f"unexpected output from host: {line[:200]!r}") from None
        if "result" not in record:
            return
        task = pending.pop(record["index"])
        result = TaskResult.from_module(host, play, task, record["result"])
        if result.status is Status.FAILED:
            self._out.add(host)
        self._emit(result)

    def _finish(self, host: str, play: str, pending: dict, status: Status, msg: str) -> None:
        self._out.add(host)
        if not pending:  # every task had reported: the failure still must be seen
            name = "(remote process)"
            self._emit(TaskResult(host, play, -1, name, "-", status, msg))
        for task in pending.values():
            self._emit(TaskResult(host, play, task.index, task.name, task.module, status, msg))
        pending.clear()

    def _emit(self, result: TaskResult) -> None:
        result = redact_result(result)  # what enters the controller shows no secret
        self.result.results.append(result)
        self.events.task_done(result)
