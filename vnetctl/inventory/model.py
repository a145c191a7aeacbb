"""The inventory as plain data: hosts with their merged variables, groups, host selection.

How the variables of a host are merged (Ansible's precedence) is described, and done, in
`vnetctl.inventory.loader`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnetctl.errors import Location
from vnetctl.inventory.patterns import select_names
from vnetctl.secrets import is_secret_name

# Variables holding passwords: readable by the connection code, never shown.
SECRET_VARS = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
        "vnetctl_password",
        "vnetctl_become_password",
    }
)

# Groups every inventory has; `ungrouped` holds the hosts that are in no other group.
ALL = "all"
UNGROUPED = "ungrouped"


def masked(variables: dict[str, Any]) -> dict[str, Any]:
    """`variables` with the values of secret variables (by name) replaced by '***'."""
    return {
        k: ("***" if k in SECRET_VARS or is_secret_name(k) else v) for k, v in variables.items()
    }


@dataclass
class Host:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)  # merged, lowest to highest precedence
    groups: list[str] = field(default_factory=list)  # ancestors too: `all`, then sorted
    origins: dict[str, Location] = field(default_factory=dict, compare=False)  # var -> file:line
    where: Location | None = field(default=None, compare=False)  # first definition

    @property
    def group_names(self) -> list[str]:
        """Ansible's magic `group_names`: the host's groups, sorted, without `all`.

        Like Ansible (checked against ansible-core 2.19), a host that is in no other group
        has `group_names == ['ungrouped']`."""
        return sorted(g for g in self.groups if g != ALL)

    def __repr__(self) -> str:  # never show a password, whatever prints a Host
        return f"Host(name={self.name!r}, groups={self.groups!r}, vars={masked(self.vars)!r})"


@dataclass
class Group:
    name: str
    hosts: list[str] = field(default_factory=list)  # direct and descendants', inventory order
    children: list[str] = field(default_factory=list)  # direct child groups
    own_hosts: list[str] = field(default_factory=list)  # direct members, in the order added
    vars: dict[str, Any] = field(default_factory=dict)  # inventory vars < group_vars file
    parents: list[str] = field(default_factory=list)
    depth: int = 0  # all: 0, top-level groups: 1, their children: 2, ...
    priority: int = 1  # ansible_group_priority (from the inventory file, as in Ansible)
    where: Location | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return (
            f"Group(name={self.name!r}, hosts={self.hosts!r}, children={self.children!r}, "
            f"vars={masked(self.vars)!r})"
        )


@dataclass
class Inventory:
    hosts: dict[str, Host]  # in inventory order: the order hosts first appear in the file
    groups: dict[str, Group]
    path: Path

    def select(
        self,
        pattern: str | list[str],
        limit: str | None = None,
        *,
        where: Location | None = None,
        context: str = "",
    ) -> list[Host]:
        """Hosts matching an Ansible host pattern, restricted by `limit`; inventory order.

        `where`/`context` say where the pattern was written (a play's `hosts:`), for the
        error when a part of it names no host or group."""
        names = select_names(self, pattern, limit, where=where, context=context)
        return [self.hosts[n] for n in names]

    def child_groups(self, name: str) -> list[str]:
        """A group's child groups; under `all`, `ungrouped` first (as Ansible makes it)."""
        kids = self.groups[name].children
        if name == ALL and UNGROUPED in kids:
            return [UNGROUPED, *(k for k in kids if k != UNGROUPED)]
        return list(kids)

    def group_map(self) -> dict[str, list[str]]:
        """Ansible's magic `groups`: group name -> host names (with `all`, `ungrouped`)."""
        return {name: list(group.hosts) for name, group in self.groups.items()}

    def magic_vars(self, host: str) -> dict[str, Any]:
        """The variables Ansible defines for every host, which nothing overrides."""
        h = self.hosts[host]
        return {
            "inventory_hostname": h.name,
            "inventory_hostname_short": h.name.split(".")[0],
            "group_names": h.group_names,
            "inventory_file": str(self.path),
            "inventory_dir": str(self.path.parent),
        }
