"""Running plans on a fleet: connections per host, mesh expansion before the plays."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from vnetctl.catalog import Catalog
from vnetctl.fleet.vxlan import expand_meshes, hosts_to_reach
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import Inventory
from vnetctl.playbook.render import render_for_hosts
from vnetctl.runner.results import RunResult
from vnetctl.runner.runner import Events, Runner, RunOptions


def connection_specs(inventory: Inventory, hosts: Sequence[str]) -> dict[str, ConnectionSpec]:
    return {h: ConnectionSpec.from_host(inventory.hosts[h]) for h in hosts}


def member_renderer(inventory: Inventory, catalog: Catalog, extra_vars: dict | None):
    """Renders one task for hosts outside the run (mesh members beyond --limit)."""

    def render(play, index: int, members: list[str]) -> dict:
        rendered = render_for_hosts(play, index, members, inventory, catalog, extra_vars)
        return {h: task.args for h, task in rendered.items() if task is not None}

    return render


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

    return asyncio.run(runner.run(plans, prepare=prepare))
