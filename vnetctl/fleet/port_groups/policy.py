"""A port group is one policy across the fleet: a group (by name, and on Open vSwitch by
bridge) declares the same VLANs (on OVS also VLAN mode and MTU) and the same security
(forged transmits, MAC address changes, promiscuous mode, as the host library reads
them: unset is reject, port_security a shorthand) on every host of the run. Arguments
are rendered per host, so a template can make them differ; a VM moved between hosts
would then land in another segment, or under another security. Such a run is refused
before any host is touched, naming the group, the field, each value with its hosts,
and the tasks' file:line.

A task that declares none of a policy's fields is not compared on them (unset means
"keep"); a field one host declares and another leaves unset differs. The security
settings are compared for every task that keeps the group (not `state: absent`), as
they take effect. A host that declares a group more than once (a later play changing
it) is compared by its last declaration. Hosts outside --limit are not compared: they
are not rendered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vnetctl.catalog import Catalog, Refused
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


def settings(catalog: Catalog, module: str, args: dict) -> dict[str, str]:
    """The security a group's arguments give it, as its host reads them (the module's
    `security`); arguments it refuses are left to the host, which says why."""
    try:
        return catalog.ask(module, "security", args)
    except Refused:
        return {}


def refuse(found: list[str]) -> None:
    """InputError listing every difference found, if any."""
    if found:
        listed = "\n  ".join(found)
        raise InputError(redact(f"port groups refused before any change:\n  {listed}"))


@dataclass(frozen=True)
class Policy:
    module: str
    identity: tuple[str, ...]  # the arguments that name one group
    fields: tuple[str, ...]  # what every host declares alike
    canonical: Callable[[Catalog, str, Any], str] = shown
    # what every host has alike whatever it declares: {field: value} of a task's args
    effective: Callable[[Catalog, str, dict], dict] = settings

    async def check(self, expansion: Expansion, plans: list[PlayPlan]) -> list[PlayPlan]:
        """`plans` unchanged, or InputError listing every difference (an expander)."""
        refuse(self.problems(plans, expansion.run.catalog))
        return plans

    def problems(self, plans: list[PlayPlan], catalog: Catalog) -> list[str]:
        last: dict[tuple, dict[str, Any]] = {}  # group -> host -> its last task
        for plan in plans:
            for host, tasks in plan.tasks.items():
                for task in (t for t in tasks if t.module == self.module):
                    group = tuple(task.args.get(k) for k in self.identity)
                    last.setdefault(group, {})[host] = task
        found = []
        for group, by_host in last.items():
            places = ", ".join(sorted({str(t.where) for t in by_host.values()}))
            declaring = {h: t for h, t in by_host.items()
                         if any(t.args.get(f) is not None for f in self.fields)}  # fmt: skip
            values = {h: {f: self.canonical(catalog, f, t.args.get(f)) for f in self.fields}
                      for h, t in declaring.items()}  # fmt: skip
            for host, task in by_host.items():
                if task.args.get("state") == "absent":
                    continue
                values.setdefault(host, {}).update(
                    self.effective(catalog, self.module, dict(task.args))
                )
            for field in dict.fromkeys(f for v in values.values() for f in v):
                hosts_by_value: dict[str, list[str]] = {}
                for host, value in ((h, v[field]) for h, v in values.items() if field in v):
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
