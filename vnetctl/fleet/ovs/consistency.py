"""A port group is one policy fleet-wide: a group of one name on one bridge declares the
same VLAN, trunks, VLAN mode, MTU and port security on every host of a play. Arguments
are rendered per host, so a template can make them differ; a VM moved between hosts
would then land on another VLAN. Such a play is refused before any host is touched,
naming the hosts, the values and the task's file:line."""

from __future__ import annotations

from collections import defaultdict

from vnetctl.errors import InputError
from vnetctl.fleet.expanders import Expansion
from vnetctl.playbook.render import PlayPlan
from vnetctl.secrets import redact

MODULE = "ovs_port_group"
POLICY = ("vlan", "trunks", "vlan_mode", "mtu", "port_security")


def _shown(value) -> str:
    return "unset" if value is None else str(value)


def policy_problems(plans: list[PlayPlan]) -> list[str]:
    problems = []
    for plan in plans:
        # (task index, group, bridge) -> field -> value -> hosts
        seen: dict[tuple, dict[str, dict[str, list[str]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list))
        )
        where = {}
        for host, tasks in plan.tasks.items():
            for task in (t for t in tasks if t.module == MODULE):
                key = (task.index, task.args.get("name"), task.args.get("bridge"))
                where[key] = task.where
                for field in POLICY:
                    value = task.args.get(field)
                    shown = _shown(sorted(value) if isinstance(value, list) else value)
                    seen[key][field][shown].append(host)
        for key, fields in seen.items():
            for field, values in fields.items():
                if len(values) > 1:
                    listed = "; ".join(f"{v} on {', '.join(sorted(h))}"
                                       for v, h in sorted(values.items()))  # fmt: skip
                    problems.append(
                        f"port group {key[1]!r} on {key[2]}: {field} differs between hosts "
                        f"({listed}) ({where[key]})"
                    )
    return problems


async def check_port_groups(expansion: Expansion, plans: list[PlayPlan]) -> list[PlayPlan]:
    problems = policy_problems(plans)
    if problems:
        listed = "\n  ".join(problems)
        raise InputError(redact(f"port groups refused before any change:\n  {listed}"))
    return plans
