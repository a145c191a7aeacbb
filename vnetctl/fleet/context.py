"""What every command that works on the fleet starts from, in one object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vnetctl.catalog import Catalog
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import Inventory
from vnetctl.playbook.render import render_for_hosts
from vnetctl.runner.control import RunOptions


@dataclass
class RunContext:
    """The modules, the inventory, the extra vars (`-e`) and the run's options. Each
    host's connection settings are computed once, on first use, and shared by the
    runner and the fleet expanders."""

    catalog: Catalog
    inventory: Inventory
    options: RunOptions = field(default_factory=RunOptions)
    extra_vars: dict[str, Any] = field(default_factory=dict)
    _specs: dict[str, ConnectionSpec] = field(default_factory=dict, repr=False)

    def spec(self, host: str) -> ConnectionSpec:
        if host not in self._specs:
            self._specs[host] = ConnectionSpec.from_host(self.inventory.hosts[host])
        return self._specs[host]

    def specs(self, hosts: Sequence[str]) -> dict[str, ConnectionSpec]:
        return {h: self.spec(h) for h in hosts}

    def render_for(self, play, index: int, hosts: list[str]) -> dict[str, dict]:
        """Task `index` of `play` rendered for `hosts`, also hosts outside the run (e.g.
        mesh members beyond --limit); hosts whose `when` is false are left out."""
        rendered = render_for_hosts(
            play, index, hosts, self.inventory, self.catalog, self.extra_vars
        )
        return {h: task.args for h, task in rendered.items() if task is not None}
