"""A port group is one policy across the fleet: a group (by name, and on Open vSwitch by
bridge) declares the same VLANs (on OVS also VLAN mode, MTU and port security) on every
host of the run. Arguments are rendered per host, so a template can make them differ; a
VM moved between hosts would then land in another segment. Such a run is refused before
any host is touched, naming the group, the field, each value with its hosts, and the
tasks' file:line.

A task that declares none of a policy's fields is not compared (unset means "keep"); a
field one host declares and another leaves unset differs. A host that declares a group
more than once (a later play changing it) is compared by its last declaration. Hosts
outside --limit are not compared: they are not rendered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.fleet.expanders import Expansion
from vnetctl.playbook.render import PlayPlan
from vnetctl.secrets import redact

UNSET = "unset"


def shown(catalog: Catalog, field: str, value: Any) -> str:
    """A value as compared and shown: lists in order, unset said so."""
    if value is None:
        return UNSET
    return str(sorted(value)) if isinstance(value, list) else str(value)


@dataclass(frozen=True)
class Policy:
    module: str
    identity: tuple[str, ...]  # the arguments that name one group
    fields: tuple[str, ...]  # what every host declares alike
    canonical: Callable[[Catalog, str, Any], str] = shown

    async def check(self, expansion: Expansion, plans: list[PlayPlan]) -> list[PlayPlan]:
        """`plans` unchanged, or InputError listing every difference (an expander)."""
        found = self.problems(plans, expansion.run.catalog)
        if found:
            listed = "\n  ".join(found)
            raise InputError(redact(f"port groups refused before any change:\n  {listed}"))
        return plans

    def problems(self, plans: list[PlayPlan], catalog: Catalog) -> list[str]:
        last: dict[tuple, dict[str, Any]] = {}  # group -> host -> its last task
        for plan in plans:
            for host, tasks in plan.tasks.items():
                for task in (t for t in tasks if t.module == self.module):
                    if any(task.args.get(f) is not None for f in self.fields):
                        group = tuple(task.args.get(k) for k in self.identity)
                        last.setdefault(group, {})[host] = task
        found = []
        for group, by_host in last.items():
            places = ", ".join(sorted({str(t.where) for t in by_host.values()}))
            for field in self.fields:
                hosts_by_value: dict[str, list[str]] = {}
                for host, task in by_host.items():
                    value = self.canonical(catalog, field, task.args.get(field))
                    hosts_by_value.setdefault(value, []).append(host)
                if len(hosts_by_value) > 1:
                    listed = "; ".join(
                        f"{value} on {', '.join(sorted(hosts))}"
                        for value, hosts in sorted(hosts_by_value.items())
                    )
                    found.append(f"{self._name(group)}: {field} differs between hosts "
                                 f"({listed}) ({places})")  # fmt: skip
        return found

    def _name(self, group: tuple) -> str:
        name, *where = group
        return f"port group {name!r}" + "".join(f" on {w}" for w in where)
