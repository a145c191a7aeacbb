"""Runs rendered plays on hosts: one remote process per host per play, bounded
concurrency, results streamed as they come. One SSH connection per host, opened on first
use and kept through every phase but the last (expanders' facts, a rolling batch until its
gates and confirmations are settled); in the last phase (run_plays with `then`) closed,
in the host's fork slot, after its last play or once it is out.

Plays run in order across the fleet (as ansible-playbook does); a host that failed or
was unreachable takes no part in later plays, and never stops the other hosts. Every
host's play is bounded in time (`timeout`, or the host's `vnetctl_timeout`); a host
whose connection dies is reported unreachable with the stage it was in. A stop request
(SIGINT/SIGTERM, see vnetctl.fleet.execute) starts no new task anywhere, gives each
host's task in flight `stop_grace` seconds to end (applied or rolled back), and reports
what never began as not started and what could not be waited for as unknown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from vnetctl.catalog import Catalog
from vnetctl.playbook.adhoc import facts_plan
from vnetctl.runner.confirm import Confirmer
from vnetctl.runner.control import Events, NullEvents, RunOptions, StopControl
from vnetctl.runner.host_code import HostCode, HostCodeStore
from vnetctl.runner.host_play import ACK_WINDOW, HostPlay, acknowledge, describe_exit
from vnetctl.runner.kill import kill
from vnetctl.runner.payload import (
    ConfirmSpec,
    LockSpec,
    answer,
    build_stdin,
    remote_command,
    task_record,
)
from vnetctl.runner.pool import ConnectionPool, last_plays, said_remote
from vnetctl.runner.results import Rescued, RunResult, Status, TaskResult, facts_of
from vnetctl.secrets import redact, redact_result
from vnetctl.transport.base import ConnectionLost, RemoteFailure, RemoteProcess, Unreachable

if TYPE_CHECKING:
    from vnetctl.inventory.connection import ConnectionSpec

POLL = 0.25  # seconds between deadline checks while a host's play runs
END_GRACE = 5.0  # after a timeout: time for the task in flight to end before the kill
EXIT_WAIT = 10.0  # after the last record: time for the remote process to exit
# the rollback timer a host arms by itself before a step that touches its management path
AUTO_CONFIRM = 60.0


Prepare = Callable[["Runner", Sequence], Awaitable[Sequence]]  # returns the plans to run
PlayAll = Callable[[Sequence], Awaitable[RunResult]]  # runs the plans


class Runner:
    def __init__(self, catalog: Catalog, specs: dict[str, ConnectionSpec], options: RunOptions,
                 events: Events, pool: ConnectionPool | None = None,
                 stop: StopControl | None = None, code: HostCodeStore | None = None):  # fmt: skip
        self.catalog = catalog
        self.code = code or HostCodeStore(options.code_store, options.host_code_cache)
        self.specs = specs
        self.options = options
        self.events = events
        self.pool = pool or ConnectionPool(specs, options)
        self.stop = stop or StopControl()
        self.result = RunResult()
        self._out: set[str] = set()  # failed or unreachable: no later plays
        # commit confirmed, while a rolling batch's health gates run: the hosts armed,
        # not yet confirmed (see release)
        self.hold_confirmations = False
        self._held: list[tuple[HostPlay, ConnectionSpec, ConfirmSpec]] = []

    def interrupt(self) -> None:
        """SIGINT/SIGTERM: the first stops gracefully, a second stops now."""
        self.stop.request(self.options.stop_grace)

    async def run(
        self, plans: Sequence, prepare: Prepare | None = None, play: PlayAll | None = None
    ) -> RunResult:
        """plans: PlayPlan objects (play, hosts, tasks per host), in playbook order.

        `prepare(runner, plans)` runs first, on the same connections, and returns the
        plans to run: fleet-level expansion that needs facts (e.g. VXLAN peers), which
        may refuse with InputError before any task runs. `play(plans)` then runs them as
        the last phase (default: run_plays; batches: vnetctl.fleet.rollout)."""
        try:
            if prepare is not None:
                try:
                    plans = await prepare(self, plans)
                except Exception:
                    if not self.stop.requested:
                        raise  # an interrupted preparation is reported as interrupted
            return await (play or functools.partial(self.run_plays, then=()))(plans)
        finally:
            await self.pool.close_all()

    @property
    def out(self) -> frozenset[str]:
        """Hosts that failed or were unreachable: they take part in no later play."""
        return frozenset(self._out)

    def report(self, result: TaskResult) -> None:
        """A result the runner did not get from a host (e.g. a health gate's verdict)."""
        self._emit(result)

    async def run_plays(self, plans: Sequence, then: Sequence | None = None) -> RunResult:
        """Run plays in order, leaving connections open for a further phase; given
        `then` (all that will run after them), they are the last phase (see above)."""
        self.result.hosts = list(
            dict.fromkeys([*self.result.hosts, *(h for p in plans for h in p.hosts)])
        )
        limit = asyncio.Semaphore(max(1, self.options.forks))
        last = None if then is None else last_plays(list(plans), then)
        if last is not None:  # opened for an earlier phase, in no play of this one
            await self.let_go([h for h in self.pool.hosts if h not in last])
        for position, plan in enumerate(plans):
            hosts = [h for h in plan.hosts if h not in self._out and plan.tasks.get(h)]
            idle = [h for h in plan.hosts if h not in self._out and not plan.tasks.get(h)]
            count = max((len(plan.tasks[h]) for h in hosts), default=0)
            if not self.stop.requested:
                self.events.play_started(plan.play.display_name, hosts, count)
            ends = {h: None if last is None else last[h] <= position for h in plan.hosts}
            await asyncio.gather(
                *(self._guarded(limit, plan, h, ends[h]) for h in hosts),
                *(self._guarded_probe(limit, plan, h, ends[h]) for h in idle),
            )
        self.result.interrupted = self.stop.requested
        return self.result

    async def let_go(self, hosts: Sequence[str], then: Sequence = ()) -> None:
        """Close the connections of `hosts` that no plan of `then` (all that follows)
        names and no held confirmation waits on."""
        keep = {h for plan in then for h in plan.hosts} | set(self.held)
        await self.pool.close(h for h in hosts if h not in keep)

    async def gather_facts(self, hosts: Sequence[str]) -> dict[str, dict | str]:
        """Each host's facts (or why not), read-only and reported to no one."""
        plan = facts_plan(list(hosts))
        options = dataclasses.replace(self.options, check=True)
        silent = Runner(self.catalog, self.specs, options, NullEvents(), self.pool, self.stop,
                        self.code)  # fmt: skip
        limit = asyncio.Semaphore(max(1, self.options.forks))
        await asyncio.gather(*(silent._guarded(limit, plan, h) for h in hosts))
        return facts_of(silent.result)

    async def _guarded(self, limit: asyncio.Semaphore, plan, host: str, ends=None) -> None:
        async with limit:
            timeout = getattr(plan.play, "confirm_timeout", None) or self.options.confirm_timeout
            persist = getattr(plan.play, "persist", None)
            play = HostPlay(host, plan.play.display_name, plan.tasks[host], self._emit,
                            self.events.note, timeout, persist)  # fmt: skip
            if self.stop.requested:
                play.close(Status.NOT_STARTED, "", "not started: the run was interrupted")
                return
            await self._run_host(play)
            await self._finished(host, ends)

    async def _guarded_probe(self, limit: asyncio.Semaphore, plan, host: str, ends=None) -> None:
        """A host with nothing to do in this play is still one the run must reach: an
        unreachable host is never reported as fine (a drift check would call it in sync)."""
        async with limit:
            if self.stop.requested:
                return
            try:
                await self.pool.get(host)
            except Unreachable as exc:
                self._unreachable(HostPlay(host, plan.play.display_name, [], self._emit,
                                           self.events.note), str(exc), "(connect)")  # fmt: skip
            await self._finished(host, ends)

    async def _finished(self, host: str, ends: bool | None) -> None:
        """`ends`: None, not the last phase; else whether this is the host's last play."""
        if ends or (ends is not None and host in self._out):
            await self.let_go([host])

    async def _run_host(self, play: HostPlay) -> None:
        host = play.host
        spec = self.specs[host]
        tasks = [task_record(t) for t in play.pending.values()]
        play.stage = "connecting"
        connecting = asyncio.create_task(self.pool.get(host))
        while not connecting.done():
            await asyncio.wait({connecting}, timeout=POLL)
            if self.stop.requested and not connecting.done():  # nothing started there yet
                connecting.cancel()
                play.close(Status.NOT_STARTED, "", "not started: the run was interrupted")
                return
        try:
            conn = connecting.result()
        except Unreachable as exc:
            self._unreachable(play, str(exc), "(connect)")
            return
        password = spec.become_password.reveal() if spec.become and spec.become_password else None
        lock = LockSpec(wait=self.options.lock_wait, owner=self.options.label,
                        borrowed=host in self.options.borrowed_locks)  # fmt: skip
        # armed when asked or a step needs it; in check mode it tells the guard only
        timeout = play.confirm_timeout or AUTO_CONFIRM
        explicit = play.confirm_timeout is not None or not self.options.refusals
        confirm = ConfirmSpec(os.urandom(8).hex(), timeout, self.options.confirm_root,
                              explicit=explicit)  # fmt: skip
        mode = spec.persist if spec.persist_over_play else play.persist or spec.persist
        persist = {"mode": mode, "root": spec.persist_root}
        known = self.code.get(spec)
        stdin = build_stdin(self.catalog, tasks, self.options.check, lock, password, confirm,
                            persist, ACK_WINDOW, known, self.options.trace)  # fmt: skip
        command = remote_command(spec.python, spec.become, spec.become_user, password is not None)
        process = None
        try:
            play.stage = "starting the remote process"
            said_remote(host, command, sudo_password=password is not None)
            process = await conn.start(command)
            self.stop.processes[host] = process
            try:
                play.launched = True  # from here on, the host may start tasks
                try:
                    await process.write(stdin)
                except ConnectionLost:
                    # the process may have ended before reading its input (no such
                    # interpreter, sudo refused): its exit says why; if the connection
                    # died, process.wait() raises ConnectionLost again
                    play.stage = "starting"
                    await self._ended(conn, process, play, spec)
                    return
                del stdin  # written: not held while the play runs (~22 KB, --forks at once)
                if self.stop.requested:
                    process.close_stdin()
                play.stage = "waiting for the host lock and facts"
                cut = await self._follow(conn, process, play, spec, known)
                if cut is None:
                    await self._ended(conn, process, play, spec)
            finally:
                self.stop.processes.pop(host, None)
        except ConnectionLost as exc:
            if play.armed is None:
                self._unreachable(play, f"{exc} {play.where()}", "(connection)")
            else:  # the host rolls back by itself unless we reach it again in time
                play.close(Status.UNKNOWN, f"{exc} {play.where()}", "not started: contact lost",
                           unseen=True)  # fmt: skip
        except RemoteFailure as exc:  # output not understood: the host is asked to stop
            if process is not None:
                process.close_stdin()
            self._failed(play, str(exc), "(remote process)", unseen=True)
        finally:
            self.result.earlier += [dict(e, host=host) for e in play.earlier]
        if play.armed is not None and confirm is not None:
            if self.hold_confirmations:
                self._held.append((play, spec, confirm))
            else:
                await self._settle(play, spec, confirm)

    @property
    def held(self) -> list[str]:
        """Hosts whose confirmation waits for `release`."""
        return [play.host for play, _, _ in self._held]

    async def release(self, roll_back: str | None = None) -> list[str]:
        """Confirm the held hosts; or, given why (a health gate failed), have each roll
        its play back now (over a new connection; its timer does it if that fails).
        Returns the hosts whose play was rolled back."""
        held, self._held = self._held, []
        limit = asyncio.Semaphore(max(1, self.options.forks))

        async def one(play: HostPlay, spec, confirm: ConfirmSpec) -> bool:
            async with limit:
                # contact with the host was kept to the end: if the timer ran out, the
                # wait for the gates is why
                return await self._settle(play, spec, confirm, roll_back, held=play.done)

        done = await asyncio.gather(*(one(*item) for item in held))
        return [play.host for (play, _, _), rolled in zip(held, done, strict=True) if rolled]

    async def _settle(self, play: HostPlay, spec, confirm: ConfirmSpec,
                      roll_back: str | None = None, held: bool = False) -> bool:  # fmt: skip
        """Commit confirmed: confirm over a new connection, or report the rollback.
        True when the host rolled the play back (whole)."""
        play.stage = "confirming"
        confirmer = Confirmer(self.pool, spec, confirm, play.names)
        settled = await confirmer.settle(play.armed_at, roll_back, held)
        if settled.confirmed:
            self.events.note(play.host, "confirmed over a new connection")
        elif not settled.reachable:
            self._unreachable(play, settled.msg, "(confirm)")
        else:
            self._failed(play, settled.msg, "(confirm)")
        return settled.rolled_back

    async def _follow(self, conn, process: RemoteProcess, play: HostPlay, spec,
                      known: HostCode) -> str | None:  # fmt: skip
        """Read the host's records until it is done. Returns None then, or why it was cut
        short ('timeout', 'interrupted'); the process is ended in that case."""
        timeout = getattr(spec, "play_timeout", None) or self.options.timeout
        reader = asyncio.create_task(self._read(process, play, spec, known))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cut = None
        try:
            while not reader.done():
                await asyncio.wait({reader}, timeout=POLL)
                if reader.done():
                    break
                if self.stop.expired():
                    cut = "interrupted"
                elif loop.time() >= deadline:
                    cut = "timeout"
                if cut:
                    break
            if cut is None:
                reader.result()  # ConnectionLost, RemoteFailure
                return None
            where = play.where()
            process.close_stdin()
            grace = 0.0 if cut == "interrupted" else min(END_GRACE, timeout / 2)
            await asyncio.wait({reader}, timeout=grace)
            if not reader.done():
                await kill(conn, process, play.pid, spec, reader)
            if cut == "timeout":
                self._failed(play, f"timed out after {timeout:g} s {where}", "(timeout)")
            else:  # ended at once: records it sent last may not have been read
                msg = f"interrupted {where}: the task in flight did not end in time"
                play.close(Status.UNKNOWN, msg, "not started: the run was interrupted",
                           unseen=True)  # fmt: skip
            return cut
        finally:
            if not reader.done():
                reader.cancel()

    async def _read(self, process: RemoteProcess, play: HostPlay, spec, known: HostCode) -> None:
        while lines := await process.readlines():
            starts = 0  # start records (see ACK_WINDOW): acknowledged in one write
            for line in lines:
                starts += play.record(line)
                if play.need or play.cached:
                    starts = await acknowledge(process, starts)
                    if await answer(process, play, self.catalog, known):
                        self.code.save(spec)  # what its code cache holds, for the next run
                if play.done:
                    break
            await acknowledge(process, starts)
            if play.done:
                process.close_stdin()
                return

    async def _ended(self, conn, process: RemoteProcess, play: HostPlay, spec) -> None:
        try:
            status, stderr = await asyncio.wait_for(process.wait(), EXIT_WAIT)
        except TimeoutError:
            waited = asyncio.create_task(process.wait())
            await kill(conn, process, play.pid, spec, waited)
            waited.cancel()
            status, stderr = None, "did not exit after its last record"
        if play.refused:
            self._out.add(play.host)
            self.result.refused.add(play.host)
        elif play.fatal:
            self._failed(play, play.fatal, f"({play.stage})")
        elif status != 0 and not (play.done and status is None):
            self._failed(play, describe_exit(status, stderr, spec.python), "(remote process)")
        elif play.stopped or (self.stop.requested and play.pending):
            play.close(Status.UNKNOWN, "interrupted", "not started: the run was interrupted")
        elif play.pending:
            self._failed(play, "the remote process ended before reporting every task",
                         "(remote process)")  # fmt: skip

    # ---- outcomes --------------------------------------------------------------------

    def _unreachable(self, play: HostPlay, msg: str, label: str) -> None:
        self._out.add(play.host)
        self.result.unreachable[play.host] = redact(msg)
        play.host_line(Status.UNREACHABLE, msg, label)
        play.close(
            Status.UNKNOWN,
            "unknown: contact was lost while this task ran; re-run to converge",
            "not started: the host was unreachable",
            unseen=True,
        )

    def _failed(self, play: HostPlay, msg: str, label: str, unseen: bool = False) -> None:
        self._out.add(play.host)
        if play.in_flight is None:
            play.host_line(Status.FAILED, msg, label)
        play.close(Status.FAILED, msg, f"not started: {msg}", unseen)

    def _emit(self, result: TaskResult | Rescued) -> None:
        if isinstance(result, Rescued):  # a rescue cleared them: the host goes on
            if self.result.rescue(result):
                self._out.discard(result.host)
            return
        result = redact_result(result)  # what enters the controller shows no secret
        if result.status is Status.FAILED:
            self._out.add(result.host)
        self.events.task_done(result)
        self.result.add(result)
