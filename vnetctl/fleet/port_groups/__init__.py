"""Port groups across the fleet: a group of one name means one VLAN everywhere.

A guest that migrates keeps its port group; if hosts disagree on the group's access
VLAN or tagged VLANs, it lands in another segment. Before any host is touched, every
`port_group` task of the run that declares VLANs is compared by group name across the
hosts it renders for (host variables can make them differ): a group with two VLAN
declarations stops the run, exit 1, with each declaration's hosts and file:line. Hosts
outside --limit are not compared (they are not rendered)."""

from __future__ import annotations

from vnetctl.errors import InputError
from vnetctl.fleet.expanders import Expander, Expansion
from vnetctl.playbook.render import PlayPlan

MODULE = "port_group"


def declarations(plans: list[PlayPlan], vlans) -> dict[str, dict[tuple, list[str]]]:
    """{group name: {(vlan, tagged): ["host (file:line)", ...]}} for the tasks that
    declare VLANs; tagged VLANs in canonical form ("200-210")."""
    found: dict[str, dict[tuple, list[str]]] = {}
    for plan in plans:
        for host, tasks in plan.tasks.items():
            for task in (t for t in tasks if t.module == MODULE):
                vlan, tagged = task.args.get("vlan"), task.args.get("tagged")
                if vlan is None and tagged is None:
                    continue
                key = (vlan, vlans.text(vlans.vids(tagged)))
                where = f"{host} ({task.where})"
                found.setdefault(task.args["name"], {}).setdefault(key, []).append(where)
    return found


async def check_vlans(expansion: Expansion, plans: list[PlayPlan]) -> list[PlayPlan]:
    vlans = expansion.run.catalog.load(MODULE).vlans
    problems = []
    for name, seen in sorted(declarations(plans, vlans).items()):
        if len(seen) > 1:
            listed = "; ".join(
                f"vlan {vlan or '-'} tagged {tagged or '-'} on {', '.join(hosts)}"
                for (vlan, tagged), hosts in sorted(seen.items(), key=str)
            )
            problems.append(f"port group {name!r} has different VLANs on different hosts: {listed}")
    if problems:
        raise InputError("port groups refused before any change:\n  " + "\n  ".join(problems))
    return plans


EXPANDERS = [Expander(module=MODULE, expand=check_vlans)]
