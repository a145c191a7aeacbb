"""Running plans on a fleet: connections per host, mesh expansion before the plays, and
SIGINT/SIGTERM turned into a graceful stop with a truthful recap."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from vnetctl.catalog import Catalog
from vnetctl.fleet.vxlan import expand_meshes, hosts_to_reach
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import Inventory
from vnetctl.playbook.render import render_for_hosts
from vnetctl.runner.results import RunResult
from vnetctl.runner.runner import Events, Runner, RunOptions

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def connection_specs(inventory: Inventory, hosts: Sequence[str]) -> dict[str, ConnectionSpec]:
    return {h: ConnectionSpec.from_host(inventory.hosts[h]) for h in hosts}


def member_renderer(inventory: Inventory, catalog: Catalog, extra_vars: dict | None):
    """Renders one task for hosts outside the run (mesh members beyond --limit)."""

    def render(play, index: int, members: list[str]) -> dict:
        rendered = render_for_hosts(play, index, members, inventory, catalog, extra_vars)
        return {h: task.args for h, task in rendered.items() if task is not None}

    return render


def run_interruptible(runner: Runner, main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), where SIGINT/SIGTERM ask `runner` to stop (a second one: now)
    instead of unwinding the event loop with tasks half reported."""

    # put back afterwards (e.g. the CLI's SIGTERM handler), taken before asyncio.run puts
    # a SIGINT handler of its own in place
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    async def guarded() -> T:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if runner.stop.requested:
                print("vnetctl: stopping now", file=sys.stderr, flush=True)
            else:
                print(
                    f"vnetctl: {signal.Signals(signum).name}: starting no new task; tasks in "
                    f"flight get {runner.options.stop_grace:g} s to end (again to stop now)",
                    file=sys.stderr,
                    flush=True,
                )
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
    inventory: Inventory,
    options: RunOptions,
    events: Events,
    catalog: Catalog,
    extra_vars: dict | None = None,
    unchecked: dict[str, str] | None = None,
) -> RunResult:
    """Run the plans; `unchecked` (drift checks) collects, per host, what could not be
    planned because another host is unreachable, instead of refusing the whole run."""
    hosts = hosts_to_reach(plans, inventory)  # mesh members beyond --limit too
    runner = Runner(catalog, connection_specs(inventory, hosts), options, events)
    render = member_renderer(inventory, catalog, extra_vars)

    async def prepare(runner: Runner, plans: Sequence) -> None:
        await expand_meshes(runner, plans, inventory, render, unchecked=unchecked)

    return run_interruptible(runner, runner.run(plans, prepare=prepare))
