"""A playbook as plain data: plays of tasks, each remembering where it was written.

Roles, `import_tasks` and `include_tasks` are resolved when the playbook is loaded: a
play's `tasks` is the flat list its hosts run (pre_tasks, the roles' tasks, tasks,
post_tasks), and each task carries the variable layers it sees (its `Scope`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vnetctl.errors import Location
from vnetctl.inventory.sources import VarLayer


@dataclass
class Role:
    """A role as a play uses it: its defaults and vars (tasks are in the play's list)."""

    name: str
    path: str  # the role's directory
    defaults: VarLayer = field(default_factory=VarLayer)
    vars: VarLayer = field(default_factory=VarLayer)
    where: Location = field(default_factory=lambda: Location("<data>"))  # named here


@dataclass
class Scope:
    """Variables a group of tasks shares (see vnetctl.playbook.variables for the order):
    its role, and the `vars:` of the role entry and imports (block level) and of
    `include_tasks` (include parameters, above task vars), outermost first."""

    role: Role | None = None
    block: tuple[VarLayer, ...] = ()
    include: tuple[VarLayer, ...] = ()


@dataclass
class LoopControl:
    loop_var: str = "item"
    index_var: str | None = None
    label: Any = None  # a template rendered per item; None: the item itself
    extended: bool = False  # ansible_loop: index, index0, first, last, length, ...


@dataclass
class Task:
    index: int  # position in its play's (flattened) task list (0-based)
    module: str
    args: dict[str, Any]  # as written: values may hold templates
    name: str | None = None
    when: list[str] = field(default_factory=list)  # Jinja expressions, all must hold
    tags: list[str] = field(default_factory=list)  # its own, and those of imports and roles
    where: Location = field(default_factory=lambda: Location("<data>"))
    arg_where: dict[str, Location] = field(default_factory=dict)  # argument -> its line
    when_where: Location | None = None
    # conditions of the role entry and imports around it, evaluated first: (expr, line)
    outer_when: list[tuple[str, Location]] = field(default_factory=list)
    # tags of each include_tasks around it: as in Ansible, an include's tags select the
    # include (all of its tasks or none), they are not inherited by its tasks
    include_tags: list[list[str]] = field(default_factory=list)
    loop: Any = None  # None: no loop; else a list or a template giving one
    loop_where: Location | None = None
    loop_control: LoopControl = field(default_factory=LoopControl)
    vars: VarLayer = field(default_factory=VarLayer)  # the task's own `vars:`
    scope: Scope = field(default_factory=Scope)
    register: str | None = None  # the variable its result is kept in (vnetctl.playbook.verbs)
    # command's changed_when / failed_when: Jinja expressions, evaluated on its host
    changed_when: list[str] | None = None
    failed_when: list[str] | None = None
    data: Any = None  # what a verb read when loaded (include_vars: its file's variables)
    # in a block with rescue/always: (the block's number in the play, "block" | "rescue" |
    # "always", whether the block has a rescue); its host runs it by Ansible's rules
    block: tuple[int, str, bool] | None = None

    @property
    def role(self) -> str | None:
        return self.scope.role.name if self.scope.role else None

    @property
    def display_name(self) -> str:
        base = self.name or self.module
        return f"{self.role} : {base}" if self.role else base

    def where_of(self, arg: str | None) -> Location:
        """The line of an argument; the task's line for a missing one."""
        return self.arg_where.get(arg, self.where) if arg is not None else self.where

    def conditions(self) -> list[tuple[str, Location]]:
        """Every `when` that must hold, outermost first, each with its line."""
        own = self.when_where or self.where
        return [*self.outer_when, *((w, own) for w in self.when)]


@dataclass
class Gate:
    """A health gate: checked on each batch just changed before the next starts."""

    kind: str  # a gate's name ("reachable", "mesh_check": vnetctl.fleet.gates) or "command"
    command: str | None = None  # for "command": a template, rendered per host
    timeout: float = 60.0
    where: Location = field(default_factory=lambda: Location("<data>"))

    @property
    def label(self) -> str:
        return f"command `{self.command}`" if self.kind == "command" else self.kind


@dataclass
class Play:
    hosts: str | list[str]  # an Ansible host pattern, or a list of them
    name: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    confirm_timeout: float | None = None  # commit confirmed: seconds (None: --confirm-timeout)
    persist: str | None = None  # boot persistence: networkd | none (None: the inventory's)
    where: Location = field(default_factory=lambda: Location("<data>"))
    hosts_where: Location = field(default_factory=lambda: Location("<data>"))
    var_where: dict[str, Location] = field(default_factory=dict)
    vars_files: list[VarLayer] = field(default_factory=list)  # in order: later wins
    roles: list[Role] = field(default_factory=list)  # in order: later wins
    serial: list[int | str] | None = None  # batch sizes: 3, "30%"; the last repeats
    serial_where: Location | None = None
    max_fail_percentage: float | None = None
    health_gates: list[Gate] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return self.hosts if isinstance(self.hosts, str) else ",".join(self.hosts)

    @property
    def file(self) -> str:
        return self.where.file

    @property
    def rolls_out(self) -> bool:
        """Run in batches with a failure budget or gates (vnetctl.fleet.rollout)."""
        return bool(self.serial or self.health_gates) or self.max_fail_percentage is not None

    def context(self, task: Task | None = None) -> str:
        """ "play 'x' task 'y'": how errors name where they are."""
        text = f"play '{self.display_name}'"
        return f"{text} task '{task.display_name}'" if task else text
