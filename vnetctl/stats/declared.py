"""What a playbook declares on each host, for `vnetctl stats -i INV PLAYBOOK`: read from
the planner's rendered and validated tasks (vnetctl.playbook.render's PlayPlans), never
from the YAML again. A host's counters are then kept only for what it declares, and its
HTB classes are named as traffic_shaping names them (the module's own class_names():
class ids from the declared names)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from vnetctl.catalog import Catalog

SHAPING = "traffic_shaping"
MESH = "vxlan_mesh"
IFNAME = "ifname"
PORTS = "ports"


@dataclass
class Declared:
    ports: set[str] = field(default_factory=set)  # every interface name a task names
    classes: dict[str, dict[int, str]] = field(default_factory=dict)  # device -> minor -> name
    vxlan: set[str] = field(default_factory=set)  # VXLAN devices (and OVS tunnel ports)


def declared(plans: Iterable[Any], catalog: Catalog) -> dict[str, Declared]:
    """Per host of the plans, what its tasks declare."""
    out: dict[str, Declared] = {}
    for plan in plans:
        for host, tasks in plan.tasks.items():
            mine = out.setdefault(host, Declared())
            for task in tasks:
                mine.ports |= interface_names(catalog[task.module], task.args)
                if task.module == SHAPING and task.args.get("state", "present") == "present":
                    shaped(mine, catalog, task.args)
                if task.module == MESH and task.args.get("state", "present") == "present":
                    mine.vxlan |= set(catalog.ask(MESH, "peer_devices", dict(task.args)))
    for plan in plans:  # a selected host with no task declares nothing
        for host in plan.hosts:
            out.setdefault(host, Declared())
    return out


def shaped(mine: Declared, catalog: Catalog, args: Mapping[str, Any]) -> None:
    mine.classes[args["name"]] = catalog.ask(SHAPING, "class_names", dict(args))
    if args.get("ingress_limit") is not None:  # its IFB, shaped by a default class alone
        ifb = catalog.ask(SHAPING, "ifb_name", args["name"])
        mine.classes[ifb] = catalog.ask(SHAPING, "class_names", {})
        mine.ports.add(ifb)


def interface_names(spec: Mapping[str, Any], args: Any) -> set[str]:
    """Every value an `ifname` rule of the module's spec checked in the task's arguments
    (`name`, `members`, a dict's options), and the names a `ports` list holds (an OVS
    bridge's ports are `str`: OVS allows longer names; a port group's may be globs):
    the devices it declares."""
    found: set[str] = set()
    if not isinstance(args, Mapping):
        return found
    for key, rule in spec.items():
        value = args.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if rule.get("type") == IFNAME or rule.get("elements") == IFNAME or key == PORTS:
            found |= {v for v in values if isinstance(v, str)}
        if rule.get("options"):
            for item in values:
                found |= interface_names(rule["options"], item)
                if key == PORTS and isinstance(item, Mapping) and isinstance(item.get("name"), str):
                    found.add(item["name"])
    return found


def is_declared(port: str, mine: Declared) -> bool:
    """A port a task names, or one a port group's shell pattern (vnet*) takes."""
    globs = (p for p in mine.ports if any(c in p for c in "*?["))
    return port in mine.ports or any(fnmatchcase(port, g) for g in globs)


def name_classes(
    catalog: Catalog, classes: Mapping[str, Mapping[str, dict]], mine: Declared | None
) -> dict[str, dict[str, dict]]:
    """{device: {class: counters and id}}: without a declaration every class by its id;
    with one only the declared devices' declared classes, by their names."""
    out: dict[str, dict[str, dict]] = {}
    for dev, by_id in sorted(classes.items()):
        names = None if mine is None else mine.classes.get(dev)
        if mine is not None and names is None:
            continue
        for cid, row in sorted(by_id.items()):
            name = cid
            if names is not None:
                name = catalog.ask(SHAPING, "class_name", cid, row["parent"], names)
                if name is None:
                    continue
            out.setdefault(dev, {})[name] = dict(row, id=cid)
    return out
