"""A worker process: its share of the hosts, run by a Runner of its own (its own event
loop and connections), play by play when the parent says so, every result sent to the
parent as it comes (vnetctl.fleet.workers.parent shows and merges them).

To the parent: ("task", TaskResult), ("rescued", Rescued), ("note", host, text),
("played", k, out, unreachable, refused, earlier) after play k, ("done",) at the end.
From the parent: ("go", k) starts play k, ("stop",) is a stop request (a second one:
stop now). Signals are the parent's alone: a worker ignores SIGINT and SIGTERM (a
Ctrl-C reaches the whole process group, a systemd stop the whole cgroup), and if the
parent goes away the worker stops gracefully, as on a first SIGINT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Sequence
from multiprocessing.connection import Connection

from vnetctl.runner.results import Keep, Rescued, TaskResult
from vnetctl.runner.runner import Runner

GO, STOP, TASK, RESCUED, NOTE, PLAYED, DONE = (
    "go", "stop", "task", "rescued", "note", "played", "done",
)  # fmt: skip


class Parent:
    """The worker's side of the pipe: sends that never raise once the parent is gone."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.gone = False

    def send(self, *message) -> None:
        if self.gone:
            return
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self.gone = True


class Forward:
    """The Events a worker's runner reports to: all of it goes to the parent, which
    prints the play headers itself (one per play for the whole fleet)."""

    def __init__(self, parent: Parent):
        self.parent = parent

    def play_started(self, name: str, hosts: Sequence[str], task_count: int) -> None:
        pass

    def task_done(self, result: TaskResult) -> None:
        self.parent.send(TASK, result)

    def note(self, host: str, text: str) -> None:
        self.parent.send(NOTE, host, text)


class WorkerRunner(Runner):
    """A Runner whose rescue notices go to the parent too (they change earlier results,
    which the parent holds)."""

    parent: Parent

    def _emit(self, result: TaskResult | Rescued) -> None:
        if isinstance(result, Rescued):
            self.parent.send(RESCUED, result)
        super()._emit(result)


def main(conn: Connection, run, plans: list, hosts: Sequence[str],
         others: Sequence[Connection], forks: int) -> None:  # fmt: skip
    """The worker process's body (after fork): run `plans` (cut to `hosts`), `forks`
    hosts at a time (its share of --forks). `others`: the parent's ends of the workers
    forked before, closed here so that each worker sees the parent go away."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    for other in others:
        other.close()
    parent = Parent(conn)
    options = dataclasses.replace(run.options, forks=forks)
    runner = WorkerRunner(run.catalog, run.specs(hosts), options, Forward(parent))
    runner.parent = parent
    runner.result.keep = Keep.RECAP  # the parent keeps the results; here what `out` needs
    try:
        asyncio.run(_work(conn, parent, runner, plans))
        parent.send(DONE)
    finally:
        conn.close()


async def _work(conn: Connection, parent: Parent, runner: Runner, plans: list) -> None:
    loop = asyncio.get_running_loop()
    starts: asyncio.Queue[int] = asyncio.Queue()

    def readable() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone: stop gracefully, go on alone
            loop.remove_reader(conn.fileno())
            parent.gone = True
            if not runner.stop.requested:
                runner.interrupt()
            for k in range(len(plans)):
                starts.put_nowait(k)
            return
        if message[0] == STOP:
            runner.interrupt()
        elif message[0] == GO:
            starts.put_nowait(message[1])

    loop.add_reader(conn.fileno(), readable)
    try:
        for k, plan in enumerate(plans):
            while await starts.get() != k:
                pass
            await runner.run_plays([plan], then=plans[k + 1 :])  # this worker's last phase
            result = runner.result
            parent.send(PLAYED, k, sorted(runner.out), dict(result.unreachable),
                        sorted(result.refused), list(result.earlier))  # fmt: skip
    finally:
        loop.remove_reader(conn.fileno())
        await runner.pool.close_all()
