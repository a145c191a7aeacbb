"""Running plans on a fleet: connections per host, the fleet expanders before the plays,
and SIGINT/SIGTERM turned into a graceful stop with a truthful recap."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expansion, expand, hosts_to_reach
from vnetctl.fleet.rollout import run_in_batches
from vnetctl.fleet.workers import worker_count
from vnetctl.playbook.adhoc import facts_plan
from vnetctl.runner.control import Events, NullEvents, stop_message
from vnetctl.runner.results import Keep, RunResult, facts_of
from vnetctl.runner.runner import Runner

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def make_runner(run: RunContext, hosts: Sequence[str], events: Events | None = None) -> Runner:
    return Runner(run.catalog, run.specs(hosts), run.options, events or NullEvents())


def run_interruptible(runner: Runner, main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), where SIGINT/SIGTERM ask `runner` to stop (a second one: now)
    instead of unwinding the event loop with tasks half reported."""

    # put back afterwards (e.g. the CLI's SIGTERM handler), taken before asyncio.run puts
    # a SIGINT handler of its own in place
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    async def guarded() -> T:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            again = runner.stop.requested
            print(stop_message(signum, again, runner.options.stop_grace), file=sys.stderr,
                  flush=True)  # fmt: skip
            runner.interrupt()

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            return await main
        finally:
            for signum, handler in previous.items():
                loop.remove_signal_handler(signum)
                signal.signal(signum, handler)

    return asyncio.run(guarded())


def execute(
    plans: Sequence,
    run: RunContext,
    events: Events | None = None,
    unchecked: dict[str, str] | None = None,
    rollout: bool = False,
    keep: Keep = Keep.ALL,
) -> RunResult:
    """Run the plans, after the fleet expanders (for every play, before any change);
    `unchecked` (drift checks) collects, per host, what could not be planned because
    another host is unreachable, instead of refusing the whole run. With `rollout`
    (`vnetctl run`), plays with serial, max_fail_percentage or health_gates run batch by
    batch (vnetctl.fleet.rollout); without it (drift), every play on all its hosts.
    `keep`: what the outcome keeps of each result once `events` heard it."""
    run.take_plays(plans)
    runner = make_runner(run, hosts_to_reach(run, list(plans)), events)
    runner.result.keep = keep

    async def prepare(runner: Runner, plans: Sequence) -> list:
        expansion = Expansion(run, runner.gather_facts, unchecked=unchecked)
        return await expand(expansion, list(plans))

    async def in_batches(plans: Sequence) -> RunResult:
        return await run_in_batches(runner, plans, last=True)

    rolls = rollout and any(getattr(p.play, "rolls_out", False) for p in plans)
    hosts = {h for p in plans for h in p.hosts}
    count = worker_count(run.options.workers, len(hosts))
    if count > 1 and not rolls:  # batches and health gates are decided fleet-wide
        return in_workers(runner, plans, count, prepare, run, events)
    play = in_batches if rolls else None
    return run_interruptible(runner, runner.run(plans, prepare=prepare, play=play))


def in_workers(runner: Runner, plans: Sequence, count: int, prepare, run: RunContext,
               events: Events | None) -> RunResult:  # fmt: skip
    """The expanders here (they read facts fleet-wide, over connections closed before
    the fork), then the plays in `count` worker processes."""

    async def expanded() -> Sequence:
        try:
            return await prepare(runner, plans)
        except Exception:
            if not runner.stop.requested:
                raise  # an interrupted preparation is reported as interrupted
            return plans
        finally:
            await runner.pool.close_all()

    from vnetctl.fleet.workers.parent import Workers  # multiprocessing: only when forking

    plans = run_interruptible(runner, expanded())
    workers = Workers(run, plans, count, events, stopped=runner.stop.requested)
    workers.result.keep = runner.result.keep
    return workers.execute()


def read_facts(run: RunContext, hosts: Sequence[str]) -> tuple[dict, dict, RunResult]:
    """Facts of `hosts` as a run of their own (`vnetctl facts`, `snapshot`), read-only:
    ({host: facts}, {host: why not}, the outcome)."""
    outcome = execute([facts_plan(list(hosts))], run)
    facts, errors = {}, dict(outcome.unreachable)
    for host, found in facts_of(outcome).items():
        if isinstance(found, dict):
            facts[host] = found
        else:
            errors.setdefault(host, found)
    return facts, errors, outcome
