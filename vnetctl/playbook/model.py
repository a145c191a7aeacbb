"""A playbook as plain data: plays of tasks, each remembering where it was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vnetctl.errors import Location


@dataclass
class Task:
    index: int  # position in its play's task list (0-based)
    module: str
    args: dict[str, Any]  # as written: values may hold templates
    name: str | None = None
    when: list[str] = field(default_factory=list)  # Jinja expressions, all must hold
    tags: list[str] = field(default_factory=list)
    where: Location = field(default_factory=lambda: Location("<data>"))
    arg_where: dict[str, Location] = field(default_factory=dict)  # argument -> its line
    when_where: Location | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.module

    def where_of(self, arg: str | None) -> Location:
        """The line of an argument; the task's line for a missing one."""
        return self.arg_where.get(arg, self.where) if arg is not None else self.where


@dataclass
class Play:
    hosts: str | list[str]  # an Ansible host pattern, or a list of them
    name: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    confirm_timeout: float | None = None  # commit confirmed: seconds (None: --confirm-timeout)
    where: Location = field(default_factory=lambda: Location("<data>"))
    hosts_where: Location = field(default_factory=lambda: Location("<data>"))
    var_where: dict[str, Location] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return self.hosts if isinstance(self.hosts, str) else ",".join(self.hosts)

    @property
    def file(self) -> str:
        return self.where.file

    def context(self, task: Task | None = None) -> str:
        """ "play 'x' task 'y'": how errors name where they are."""
        text = f"play '{self.display_name}'"
        return f"{text} task '{task.display_name}'" if task else text
