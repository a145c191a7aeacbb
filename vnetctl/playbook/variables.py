"""The variables a task sees on a host.

Precedence, lowest first: what ansible-core 2.19 does, checked with ansible-playbook
on the same files; the README's table says the same, and tests/unit/test_precedence.py
checks each level against the one above it, reading that table.

1. role defaults: every role of the play in order (a later role's win), then the
   task's own role's (for its own tasks, a role's defaults beat the other roles')
2. the host's inventory variables (their own order: vnetctl.inventory.loader)
3. the play's `vars` (an `import_playbook`'s `vars` over them)
4. the play's `vars_files`, in order
5. role vars: every role of the play in order, then the task's own role's
6. block variables: the `vars:` of the task's role entry, then of each `import_tasks`
   around it, outermost first
7. the task's own `vars:`
7a. what `include_vars` gave the host, then what `set_fact` set and `register` kept (the
   verbs run while planning, vnetctl.playbook.verbs): the host's own, in every later play
8. include parameters: the `vars:` of each `include_tasks` around it, outermost first
9. extra vars (`-e`)
10. loop variables: `item` (or `loop_control.loop_var`), `index_var`, `ansible_loop`
    (as in Ansible, a loop variable wins over an extra var of the same name)

then the magic variables, which nothing overrides: `inventory_hostname`,
`inventory_hostname_short`, `group_names`, `groups` (group -> host names, all of the
inventory, not only --limit), `hostvars` (host -> its inventory and extra variables),
`inventory_file`, `inventory_dir`, `playbook_dir`, `omit`, and in a role's tasks
`role_name` and `role_path`. Values replace, they are not merged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from vnetctl.errors import Location
from vnetctl.inventory.model import Inventory
from vnetctl.inventory.sources import VarLayer
from vnetctl.playbook.model import Play, Task
from vnetctl.templar import OMIT, LazyVars, Templar


def merged(layers: list[VarLayer]) -> VarLayer:
    out = VarLayer()
    for layer in layers:
        out.values.update(layer.values)
        out.origins.update(layer.origins)
    return out


def above_inventory(play: Play) -> VarLayer:
    """What a play sets above the inventory at its own level (levels 3-5): play vars,
    vars_files, role vars. With `-e` on top, these choose a host's connection too."""
    return merged(
        [VarLayer(play.vars, play.var_where), *play.vars_files, *(r.vars for r in play.roles)]
    )


def below_inventory(play: Play) -> VarLayer:
    """What a play sets below the inventory: its roles' defaults (level 1)."""
    return merged([r.defaults for r in play.roles])


class _HostVarsView(Mapping[str, Any]):
    """`hostvars`: host name -> its variables, each host's rendered only when used."""

    def __init__(self, fleet: Fleet):
        self._fleet = fleet

    def __getitem__(self, host: str) -> LazyVars:
        if host not in self._fleet.inventory.hosts:
            raise KeyError(host)
        return self._fleet.host_vars(host)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fleet.inventory.hosts)

    def __len__(self) -> int:
        return len(self._fleet.inventory.hosts)


class Fleet:
    """What every host's variables share in one planning run."""

    def __init__(self, inventory: Inventory, extra_vars: Mapping[str, Any]):
        self.inventory = inventory
        self.templar = Templar()
        self.extra_vars = dict(extra_vars)
        self.extra = VarLayer(dict(extra_vars), {k: Location("-e") for k in extra_vars})
        self.groups = inventory.group_map()
        self.hostvars = _HostVarsView(self)
        self._host_vars: dict[str, LazyVars] = {}
        self._scoped: dict[tuple, LazyVars] = {}
        self._roles: dict[int, tuple[VarLayer, VarLayer]] = {}
        # host -> (task or item, false condition): what `when` left out, until taken
        self.skipped: dict[str, list[tuple[str, str]]] = {}
        # per host: include_vars, then set_fact and register (see vnetctl.playbook.verbs)
        self._included: dict[str, VarLayer] = {}
        self._facts: dict[str, VarLayer] = {}
        self._version: dict[str, int] = {}

    def include_vars(self, host: str, layer: VarLayer) -> None:
        merged_layer = merged([self._included.get(host, VarLayer()), layer])
        self._included[host] = merged_layer
        self._version[host] = self._version.get(host, 0) + 1

    def set_facts(self, host: str, values: dict[str, Any], at: Location) -> None:
        layer = VarLayer(dict(values), {k: at for k in values})
        self._facts[host] = merged([self._facts.get(host, VarLayer()), layer])
        self._version[host] = self._version.get(host, 0) + 1

    def magic(self, host: str) -> dict[str, Any]:
        return {
            **self.inventory.magic_vars(host),
            "groups": self.groups,
            "hostvars": self.hostvars,
            "omit": OMIT,
        }

    def _inventory(self, host: str) -> VarLayer:
        record = self.inventory.hosts[host]
        return VarLayer(record.vars, record.origins)

    def host_vars(self, host: str) -> LazyVars:
        """A host's inventory variables, what include_vars and set_fact gave it so far,
        and extra variables (what `hostvars[host]` shows)."""
        key = f"{host}\0{self._version.get(host, 0)}"
        if key not in self._host_vars:
            layers = [self._inventory(host), self._included.get(host, VarLayer()),
                      self._facts.get(host, VarLayer()), self.extra]  # fmt: skip
            layer = merged(layers)
            self._host_vars[key] = LazyVars(
                self.templar, layer.values, self.magic(host), layer.origins
            )
        return self._host_vars[key]

    def _play_roles(self, play: Play) -> tuple[VarLayer, VarLayer]:
        """Every role's defaults, and every role's vars, merged in the play's order."""
        if id(play) not in self._roles:
            self._roles[id(play)] = (below_inventory(play), merged([r.vars for r in play.roles]))
        return self._roles[id(play)]

    def layers(self, play: Play, task: Task | None, host: str) -> VarLayer:
        """Every variable of `host` for `task` (None: the play's own level), as written."""
        defaults, role_vars = self._play_roles(play)
        scope = task.scope if task is not None else None
        own = scope.role if scope is not None else None
        stack = [defaults, *([own.defaults] if own else []), self._inventory(host)]
        stack.append(VarLayer(play.vars, play.var_where))
        stack += [*play.vars_files, role_vars, *([own.vars] if own else [])]
        if task is not None:
            stack += [*task.scope.block, task.vars]
            stack += [self._included.get(host, VarLayer()), self._facts.get(host, VarLayer())]
            stack += [*task.scope.include]
        stack.append(self.extra)
        return merged(stack)

    def fixed(self, play: Play, task: Task | None, host: str) -> dict[str, Any]:
        fixed = {**self.magic(host), "playbook_dir": str(Path(play.file).parent)}
        role = task.scope.role if task is not None else None
        if role is not None:
            fixed.update(role_name=role.name, role_path=role.path)
        return fixed

    def task_vars(self, play: Play, task: Task | None, host: str) -> LazyVars:
        """The variables of `task` on `host`, shared by the tasks of the same scope."""
        scope = task.scope if task is not None else None
        key = (
            id(play),
            host,
            id(scope.role) if scope else None,
            tuple(map(id, scope.block)) if scope else (),
            tuple(map(id, scope.include)) if scope else (),
            id(task.vars) if task is not None and task.vars.values else None,
            self._version.get(host, 0),
        )
        if key not in self._scoped:
            layer = self.layers(play, task, host)
            self._scoped[key] = LazyVars(
                self.templar, layer.values, self.fixed(play, task, host), layer.origins
            )
        return self._scoped[key]

    def item_vars(self, play: Play, task: Task, host: str, loop: dict[str, Any]) -> LazyVars:
        """The variables of one loop item: the task's, with the loop variables bound
        (a new set: a task variable may refer to the item)."""
        layer = self.layers(play, task, host)
        fixed = {**loop, **self.fixed(play, task, host)}
        return LazyVars(self.templar, layer.values, fixed, layer.origins)


def register_secrets(inventory: Inventory, extra_vars: Mapping[str, Any]) -> None:
    """Every host's secret variables (inventory and -e; vnetctl.secrets) registered
    before anything runs, so that every command hides them, also those that render no
    playbook (facts, snapshot) and what a host says back before any task read them."""
    fleet = Fleet(inventory, extra_vars)
    for host in inventory.hosts:
        fleet.host_vars(host).register_secrets()
