"""What every command that works on the fleet starts from, in one object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import Inventory
from vnetctl.inventory.sources import VarLayer
from vnetctl.playbook.extra_vars import CLI as EXTRA_VARS
from vnetctl.playbook.model import Play
from vnetctl.playbook.render import render_for_hosts
from vnetctl.playbook.variables import above_inventory, below_inventory, merged
from vnetctl.runner.control import RunOptions


@dataclass
class RunContext:
    """The modules, the inventory, the extra vars (`-e`) and the run's options. Each
    host's connection settings (its inventory variables; above them the vars of the
    plays it is in, then `-e`) are computed once, on first use, and shared by the
    runner and the fleet expanders."""

    catalog: Catalog
    inventory: Inventory
    options: RunOptions = field(default_factory=RunOptions)
    extra_vars: dict[str, Any] = field(default_factory=dict)
    cli_defaults: dict[str, Any] = field(default_factory=dict)  # -u, -b: below every var
    _specs: dict[str, ConnectionSpec] = field(default_factory=dict, repr=False)
    _plays: dict[str, list[Play]] = field(default_factory=dict, repr=False)

    def spec(self, host: str) -> ConnectionSpec:
        if host not in self._specs:
            plays = self._plays.get(host) or [None]
            specs = [self._spec_in(play, host) for play in plays]
            for play, spec in zip(plays[1:], specs[1:], strict=True):
                if spec != specs[0]:
                    raise InputError(
                        f"host {host}: play '{play.display_name}' connects differently from "
                        f"play '{plays[0].display_name}' (its vars set connection variables): "
                        "one run reaches a host one way; set them in the inventory or with -e",
                        play.where,
                    )
            self._specs[host] = specs[0]
        return self._specs[host]

    def _spec_in(self, play: Play | None, host: str) -> ConnectionSpec:
        extra = VarLayer(dict(self.extra_vars), dict.fromkeys(self.extra_vars, EXTRA_VARS))
        over = merged([above_inventory(play), extra]) if play is not None else extra
        cli = VarLayer(dict(self.cli_defaults))
        under = [below_inventory(play), cli] if play is not None else [cli]
        return ConnectionSpec.from_host(self.inventory.hosts[host], over, under)

    def take_plays(self, plans: Sequence) -> None:
        """The plays about to run: connection variables their vars set (README's
        precedence: play vars < -e) choose how their hosts are reached."""
        self._plays.clear()
        self._specs.clear()
        for plan in plans:
            if isinstance(getattr(plan, "play", None), Play):
                for host in plan.hosts:
                    self._plays.setdefault(host, []).append(plan.play)

    def specs(self, hosts: Sequence[str]) -> dict[str, ConnectionSpec]:
        return {h: self.spec(h) for h in hosts}

    def render_for(self, play, index: int, hosts: list[str]) -> dict[str, dict]:
        """Task `index` of `play` rendered for `hosts`, also hosts outside the run (e.g.
        mesh members beyond --limit); hosts whose `when` is false are left out."""
        rendered = render_for_hosts(
            play, index, hosts, self.inventory, self.catalog, self.extra_vars
        )
        return {h: task.args for h, task in rendered.items() if task is not None}
