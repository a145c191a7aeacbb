"""The parent of the worker processes: it forks them (each with its share of the hosts),
starts each play on all of them at once, shows their results on the one console as they
come, and merges them into the one RunResult that the recap, the JSON report and the
exit code are made from.

Plays run in order across the fleet, as in one process: play k+1 starts on every worker
once every worker finished play k (a host failed in one worker is out of the later plays
as it is in one process). SIGINT/SIGTERM reach the parent only (workers ignore them);
it passes the stop request to every worker, which stops its hosts as one process does.
A worker that dies (killed, out of memory) fails its hosts: the tasks it had not
reported are `unknown` (the host may have run them; its SSH connection closed, the
host ended the task in flight and started no other) and the run goes on with the rest.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from vnetctl.fleet.workers import child
from vnetctl.playbook.render import cut
from vnetctl.runner.control import Events, NullEvents, stop_message
from vnetctl.runner.results import RunResult, Status, TaskResult

POLL = 0.2  # seconds between looks at a stop request while waiting for workers
THREADS_WAIT = 5.0  # before the fork: time for ending threads to be gone
JOIN_WAIT = 10.0  # after a worker said it is done: time for its process to exit
WORKER_LABEL = "(worker)"


@dataclass
class Worker:
    index: int
    hosts: list[str]
    conn: Connection
    process: multiprocessing.process.BaseProcess
    alive: bool = True
    done: bool = False
    played: int = -1  # the last play it finished
    reported: set[tuple[str, int]] = field(default_factory=set)  # (host, index), this play
    summary: tuple = ((), {}, (), ())  # out, unreachable, refused, earlier: its last word

    def send(self, *message) -> None:
        with contextlib.suppress(OSError):  # it died: its pipe's end says so to wait()
            self.conn.send(message)

    def how_it_ended(self) -> str:
        self.process.join(JOIN_WAIT)
        code = self.process.exitcode
        if code is None:
            return "stopped answering"
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"


def threads() -> int:
    """This process's OS threads (a thread Python joined may still be ending)."""
    return len(os.listdir("/proc/self/task"))


def settle_threads(timeout: float = THREADS_WAIT) -> None:
    """Wait for this process to be its main thread alone before a fork. A thread that
    Python has joined (the event loop's executor, after the fleet expanders read facts)
    can still be running its exit handlers, OpenSSL's among them, which hold a lock the
    fork would copy locked: a worker then hangs at its first key exchange (seen here)."""
    deadline = time.monotonic() + timeout
    while threads() > 1:
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"{threads()} threads still run in this process: worker processes cannot "
                "be forked safely (run with --workers 1)"
            )
        time.sleep(0.01)


def share(hosts: Sequence[str], count: int) -> list[list[str]]:
    """Hosts dealt round-robin to `count` workers (none left empty)."""
    count = max(1, min(count, len(hosts)))
    return [list(hosts[i::count]) for i in range(count)]


def forks_of(forks: int, share: int, hosts: int) -> int:
    """A worker's part of --forks: in proportion to its hosts, so that the whole run has
    no more hosts in flight than --forks says (give or take one per worker)."""
    return max(1, -(-forks * share // max(1, hosts)))


class Workers:
    def __init__(self, run, plans: Sequence, count: int,
                 events: Events | None = None, stopped: bool = False):  # fmt: skip
        self.run = run
        self.plans = list(plans)
        self.events = events or NullEvents()
        self.hosts = list(dict.fromkeys(h for p in self.plans for h in p.hosts))
        self.count = count
        self.workers: list[Worker] = []
        self.result = RunResult(hosts=list(self.hosts))
        self.out: set[str] = set()
        self.stops = 1 if stopped else 0  # stop requests received
        self._sent_stops = 0
        self._current = -1  # the play running

    # ---- the run -------------------------------------------------------------------

    def execute(self) -> RunResult:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start()
            for k, plan in enumerate(self.plans):
                self._play(k, plan)
            self._finish()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for worker in self.workers:
                worker.conn.close()
                if worker.process.is_alive():  # only after an error of the parent's own
                    worker.process.kill()
                worker.process.join()
        self.result.interrupted = self.stops > 0
        return self.result

    def _start(self) -> None:
        settle_threads()
        context = multiprocessing.get_context("fork")
        shares = [(hosts, cut(self.plans, set(hosts).__contains__))
                  for hosts in share(self.hosts, self.count)]  # fmt: skip
        # what exists now is shared with the workers, copy-on-write: the collector of a
        # worker must not write to every object of it (each page would be copied)
        gc.collect()
        gc.freeze()
        try:
            for index, (hosts, plans) in enumerate(shares):
                mine, theirs = context.Pipe()
                others = [w.conn for w in self.workers]
                name = f"vnetctl-worker-{index + 1}"
                forks = forks_of(self.run.options.forks, len(hosts), len(self.hosts))
                args = (theirs, self.run, plans, hosts, others, forks)
                process = context.Process(target=child.main, name=name, args=args)
                process.start()
                theirs.close()
                self.workers.append(Worker(index, hosts, mine, process))
        finally:
            gc.unfreeze()

    def _play(self, k: int, plan) -> None:
        self._current = k
        self._pass_stops()  # one that came before: no host starts this play
        hosts = [h for h in plan.hosts if h not in self.out and plan.tasks.get(h)]
        count = max((len(plan.tasks[h]) for h in hosts), default=0)
        if not self.stops:
            self.events.play_started(plan.play.display_name, hosts, count)
        for worker in self.workers:
            if worker.alive:
                worker.reported.clear()
                worker.send(child.GO, k)
        self._wait(lambda w: w.played >= k)

    def _finish(self) -> None:
        self._current = -1
        self._wait(lambda w: w.done)
        for worker in self.workers:
            out, unreachable, refused, earlier = worker.summary
            self.result.unreachable.update(unreachable)
            self.result.refused.update(refused)
            self.result.earlier += earlier

    def _wait(self, ready) -> None:
        """Take messages until every live worker is `ready`; pass on stop requests."""
        while True:
            self._pass_stops()
            waiting = [w for w in self.workers if w.alive and not ready(w)]
            if not waiting:
                return
            for conn in wait([w.conn for w in waiting], timeout=POLL):
                worker = next(w for w in waiting if w.conn is conn)
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self._lost(worker)
                    continue
                self._take(worker, message)

    def _take(self, worker: Worker, message: tuple) -> None:
        kind = message[0]
        if kind == child.TASK:
            result: TaskResult = message[1]
            worker.reported.add((result.host, result.index))
            self._emit(result)
        elif kind == child.RESCUED:
            if self.result.rescue(message[1]):
                self.out.discard(message[1].host)
        elif kind == child.NOTE:
            self.events.note(message[1], message[2])
        elif kind == child.PLAYED:
            worker.played = message[1]
            worker.summary = tuple(message[2:])
            self.out.update(message[2])
        elif kind == child.DONE:
            worker.done = True

    def _emit(self, result: TaskResult) -> None:
        if result.status in (Status.FAILED, Status.UNREACHABLE):
            self.out.add(result.host)
        self.events.task_done(result)
        self.result.add(result)

    # ---- a worker lost -------------------------------------------------------------

    def _lost(self, worker: Worker) -> None:
        """A worker died: its hosts are failed, what it had not reported is unknown (in
        the play it was running) or not started (in the next play of each host)."""
        worker.alive = False
        why = f"the controller's worker process {worker.index + 1} {worker.how_it_ended()}"
        for host in worker.hosts:
            if host in self.out:
                continue
            if self._current >= 0 and worker.played < self._current:
                self._fail_in(host, self._current, why, worker.reported, Status.UNKNOWN)
            else:
                later = [k for k in range(max(0, self._current + 1), len(self.plans))
                         if self.plans[k].tasks.get(host)]  # fmt: skip
                if later:
                    self._fail_in(host, later[0], why, set(), Status.NOT_STARTED)

    def _fail_in(self, host: str, k: int, why: str, reported: set, status: Status) -> None:
        plan = self.plans[k]
        tasks = plan.tasks.get(host) or []
        name = plan.play.display_name
        self._emit(TaskResult(host, name, -1, WORKER_LABEL, "-", Status.FAILED, why))
        said = (
            f"unknown: {why} before reporting it; the host may have run it; re-run to converge"
            if status is Status.UNKNOWN
            else f"not started: {why}"
        )
        for task in tasks:
            if (host, task.index) not in reported:
                self._emit(TaskResult(host, name, task.index, task.name, task.module,
                                      status, said))  # fmt: skip

    # ---- stop requests -------------------------------------------------------------

    def _on_signal(self, signum: int, frame) -> None:
        print(stop_message(signum, self.stops > 0, self.run.options.stop_grace),
              file=sys.stderr, flush=True)  # fmt: skip
        self.stops += 1

    def _pass_stops(self) -> None:
        while self._sent_stops < self.stops:
            self._sent_stops += 1
            for worker in self.workers:
                if worker.alive:
                    worker.send(child.STOP)
