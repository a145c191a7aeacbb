"""Ansible-compatible inventories, with `group_vars/` and `host_vars/` beside them.

Which files a source is and their formats (YAML, INI, `--list` JSON) are in
vnetctl.inventory.formats; every format is fed to the builder here, so what follows holds
for all of them. With several sources (or a directory of files) groups and hosts add up
over the files, and the `group_vars/` levels below are taken source by source (a later
source's `group_vars/all` beats an earlier source's `group_vars/child`), as Ansible does.

The format is Ansible's (the `yaml` inventory plugin): top-level keys are groups (usually
just `all`); a group is a mapping with `hosts` (name -> nothing or a mapping of
variables), `children` (name -> group) and `vars`; a host may be in several groups, and a
group may be written more than once (its hosts, children and vars add up, later values
win). Host names may use Ansible ranges: `kvm[01:20]`, `kvm-[a:f]`, `kvm[0:20:5]`, and
a port: `kvm1:2222` is host kvm1 with `ansible_port: 2222`.
Hosts in no group are in `ungrouped`; groups with no parent are children of `all`.

Variable files are looked up beside the inventory file, for every group and host that is
in the inventory (files for other names are ignored, as Ansible does): `group_vars/NAME`
and `host_vars/NAME`, as `NAME.yml`, `NAME.yaml`, `NAME.json`, `NAME` or a directory
`NAME/` whose files are read in sorted order (later files win). Only these two folders
beside the inventory are read (not those beside the playbook).

Variable precedence, lowest to highest. This is what ansible-core 2.19 does (checked
with `ansible-inventory --host` on the same files, see tests/unit/test_inventory.py).
The inventory's levels, above role defaults and below everything a playbook sets (the
whole order, playbook levels included, is in vnetctl.playbook.variables and the
README's table, which tests/unit/test_precedence.py checks):

1. `all`'s vars in the inventory file
2. other groups' vars in the inventory file, parents before children: sorted by group
   depth (top-level groups are depth 1, their children 2, ...), then
   `ansible_group_priority` (default 1; set in the inventory file), then group name
3. `group_vars/all`
4. other groups' `group_vars/` files, in the same order as 2.
5. the host's vars in the inventory file (written more than once: later wins)
6. `host_vars/HOST`

So every `group_vars/` file beats every group's vars in the inventory file, whatever the
depth: `group_vars/all.yml` beats `rack1: {vars: ...}`. Values replace, they are not
deep-merged (Ansible's default `hash_behaviour = replace`). Magic variables
(`inventory_hostname`, `group_names`, ...) are set last and cannot be overridden.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.inventory.formats import read_file, source_files
from vnetctl.inventory.model import ALL, UNGROUPED, Group, Host, Inventory
from vnetctl.inventory.sources import VarLayer, expand_host_range, file_vars
from vnetctl.yamlsrc import where, where_of

__all__ = ["Inventory", "build_inventory", "expand_host_range", "load_inventory"]

GROUP_KEYS = ("hosts", "children", "vars")
PRIORITY = "ansible_group_priority"  # orders groups of equal depth; not a variable
_BAD_GROUP_CHARS = re.compile(r"[\s,:!&*?\[\]~]")
_BAD_HOST_CHARS = re.compile(r"[\s,!&*?~]")
_HOST_PORT = re.compile(r"([^:]+):([0-9]+)")  # kvm1:2222; an IPv6 address has more colons


@dataclass
class _GroupDraft:
    name: str
    where: Location
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    vars: VarLayer = field(default_factory=VarLayer)
    priority: int = 1


@dataclass
class _HostDraft:
    name: str
    where: Location
    groups: list[str] = field(default_factory=list)
    vars: VarLayer = field(default_factory=VarLayer)


class _Builder:
    def __init__(self, path: Path):
        self.path = path
        self.file_where = Location(str(path), 1)
        self.groups: dict[str, _GroupDraft] = {}
        self.hosts: dict[str, _HostDraft] = {}

    def source(self, data: Any, path: Path) -> None:
        """One YAML inventory file of the sources."""
        self.file_where = Location(str(path), 1)
        self.top(data)

    def top(self, data: Any) -> None:
        if data is None:
            raise InputError(
                "inventory is empty: expected groups, e.g. 'all:' with 'hosts:'", self.file_where
            )
        if not isinstance(data, dict):
            raise InputError(
                "expected a YAML inventory: a mapping of groups ('all:' with 'hosts', "
                f"'children', 'vars'), got {type_name(data)}",
                where(data, self.file_where),
            )
        if "plugin" in data:
            raise InputError(
                "inventory plugins are not supported: write hosts and groups in YAML",
                where_of(data, "plugin", self.file_where),
            )
        self._group_draft(ALL, where_of(data, ALL, self.file_where))
        for name, body in data.items():
            self.group(name, body, where_of(data, name, self.file_where), parent=None)

    def _group_draft(self, name: str, at: Location) -> _GroupDraft:
        if name not in self.groups:
            self.groups[name] = _GroupDraft(name, at)
        return self.groups[name]

    def group(self, name: Any, body: Any, at: Location, parent: str | None) -> None:
        if not isinstance(name, str) or not name or _BAD_GROUP_CHARS.search(name):
            raise InputError(
                f"invalid group name {name!r}: no spaces or any of , : ! & * ? [ ] ~", at
            )
        if parent is not None and name == ALL:
            raise InputError("'all' contains every group: it cannot be a child group", at)
        group = self._group_draft(name, at)
        if parent is not None and name not in self.groups[parent].children:
            if parent == name or parent in self._descendants(name):
                raise InputError(f"group '{name}' would be its own ancestor (via '{parent}')", at)
            self.groups[parent].children.append(name)
            group.parents.append(parent)
        if body is None:
            return
        if not isinstance(body, dict):
            raise InputError(
                f"group '{name}' must be a mapping with 'hosts', 'children' or 'vars', "
                f"got {type_name(body)} {body!r}",
                at,
            )
        for key in body:
            if key not in GROUP_KEYS:
                near = difflib.get_close_matches(str(key), GROUP_KEYS, n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                raise InputError(
                    f"group '{name}': unknown key '{key}'{hint}: a group has only "
                    "'hosts', 'children' and 'vars'",
                    where_of(body, key, at),
                )
        group.vars.update(body.get("vars"), where_of(body, "vars", at), f"vars of group '{name}'")
        _take_priority(group)
        self._hosts(group, body.get("hosts"), where_of(body, "hosts", at))
        children = body.get("children")
        if children is None:
            return
        if not isinstance(children, dict):
            raise InputError(
                f"children of group '{name}' must be a mapping of groups (`name:` per line), "
                f"got {type_name(children)}",
                where_of(body, "children", at),
            )
        for child, child_body in children.items():
            self.group(child, child_body, where_of(children, child, at), parent=name)

    def _descendants(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.groups[name].children) if name in self.groups else []
        while todo:
            g = todo.pop()
            if g not in seen:
                seen.add(g)
                todo.extend(self.groups[g].children)
        return seen

    def _hosts(self, group: _GroupDraft, hosts: Any, at: Location) -> None:
        if hosts is None:
            return
        if not isinstance(hosts, dict):
            raise InputError(
                f"hosts of group '{group.name}' must be a mapping (`name:` per line, "
                f"optionally with variables), got {type_name(hosts)}",
                at,
            )
        for raw_name, host_vars in hosts.items():
            host_at = where_of(hosts, raw_name, at)
            name = str(raw_name) if isinstance(raw_name, int | float) else raw_name
            if not isinstance(name, str) or not name or _BAD_HOST_CHARS.search(name):
                raise InputError(f"invalid host name {raw_name!r}", host_at)
            if host_vars is not None and not isinstance(host_vars, dict):
                raise InputError(
                    f"host '{name}' must have a mapping of variables or nothing, got "
                    f"{host_vars!r} (for an address write `{name}: {{ansible_host: ...}}`)",
                    host_at,
                )
            port = _HOST_PORT.fullmatch(name)
            if port:  # as Ansible: the port is ansible_port, below the host's own vars
                name = port.group(1)
            for host_name in expand_host_range(name, host_at):
                if "[" in host_name or "]" in host_name:
                    raise InputError(f"invalid host name '{host_name}'", host_at)
                host = self.hosts.setdefault(host_name, _HostDraft(host_name, host_at))
                if port:
                    host.vars.update({"ansible_port": int(port.group(2))}, host_at, "port")
                host.vars.update(host_vars, host_at, f"host '{host_name}'")
                if group.name not in host.groups:
                    host.groups.append(group.name)
                if host_name not in group.hosts:
                    group.hosts.append(host_name)


def _take_priority(group: _GroupDraft) -> None:
    """ansible_group_priority in the inventory file orders the group; it is no variable."""
    if PRIORITY not in group.vars.values:
        return
    value = group.vars.values.pop(PRIORITY)
    at = group.vars.origins.pop(PRIORITY)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"{PRIORITY} of group '{group.name}' must be an integer", at)
    try:
        group.priority = int(value)
    except ValueError:
        raise InputError(
            f"{PRIORITY} of group '{group.name}' must be an integer, got {value!r}", at
        ) from None


def _files_of(bases: list[Path], kind: str, name: str) -> VarLayer:
    """`kind/name` variables beside every source, later sources winning."""
    result = VarLayer()
    for base in bases:
        layer = file_vars(base / kind, name)
        result.values.update(layer.values)
        result.origins.update(layer.origins)
    return result


def _finish(b: _Builder, bases: list[Path]) -> Inventory:
    groups = b.groups
    b._group_draft(UNGROUPED, b.groups[ALL].where)
    for g in groups.values():
        if g.name != ALL and not g.parents:
            g.parents.append(ALL)
            groups[ALL].children.append(g.name)
    for h in b.hosts.values():
        direct = [g for g in h.groups if g != ALL]
        if not direct:
            groups[UNGROUPED].hosts.append(h.name)
            h.groups.append(UNGROUPED)
        elif UNGROUPED in direct and len(direct) > 1:
            h.groups.remove(UNGROUPED)
            groups[UNGROUPED].hosts.remove(h.name)

    depth: dict[str, int] = {}

    def depth_of(name: str) -> int:
        if name not in depth:
            parents = groups[name].parents
            depth[name] = max((depth_of(p) + 1 for p in parents), default=0)
        return depth[name]

    def ancestors(name: str) -> list[str]:
        result = [name]
        for parent in groups[name].parents:
            result += [a for a in ancestors(parent) if a not in result]
        return result

    order = {name: i for i, name in enumerate(b.hosts)}
    group_files = {n: [file_vars(base / "group_vars", n) for base in bases] for n in groups}
    members: dict[str, set[str]] = {n: set() for n in groups}
    result_hosts: dict[str, Host] = {}
    for h in b.hosts.values():
        host_groups: list[str] = [ALL]
        for g in h.groups:
            host_groups += [a for a in ancestors(g) if a not in host_groups]
        for g in host_groups:
            members[g].add(h.name)
        ranked = sorted(
            (groups[g] for g in host_groups if g != ALL),
            key=lambda g: (depth_of(g.name), g.priority, g.name),
        )
        layers = [groups[ALL].vars, *(g.vars for g in ranked)]
        for i in range(len(bases)):  # Ansible: source by source, each all groups
            layers += [group_files[ALL][i], *(group_files[g.name][i] for g in ranked)]
        layers += [h.vars, _files_of(bases, "host_vars", h.name)]
        merged = VarLayer()
        for layer in layers:
            merged.values.update(layer.values)
            merged.origins.update(layer.origins)
        ordered_groups = [ALL, *sorted(g for g in host_groups if g != ALL)]
        result_hosts[h.name] = Host(h.name, merged.values, ordered_groups, merged.origins, h.where)

    result_groups = {
        g.name: Group(
            name=g.name,
            hosts=sorted(members[g.name], key=order.__getitem__),
            children=list(g.children),
            own_hosts=list(g.hosts),
            vars=_group_vars(g.vars, group_files[g.name]),
            parents=list(g.parents),
            depth=depth_of(g.name),
            priority=g.priority,
            where=g.where,
        )
        for g in groups.values()
    }
    return Inventory(hosts=result_hosts, groups=result_groups, path=b.path)


def _group_vars(own: VarLayer, files: list[VarLayer]) -> dict[str, Any]:
    merged = dict(own.values)
    for layer in files:
        merged.update(layer.values)
    return merged


def build_inventory(data: Any, path: str | Path, vars_base: Path | None = None) -> Inventory:
    """An Inventory from already-loaded data (a mapping as in an inventory file).

    `vars_base`: the folder holding `group_vars/` and `host_vars/` (None: no such files)."""
    builder = _Builder(Path(path))
    builder.top(data)
    return _finish(builder, [vars_base] if vars_base else [])


def load_inventory(sources: str | Path | list[str | Path]) -> Inventory:
    """Load inventory sources (files, directories or `host1,host2,` lists, in order; later
    ones win) and the `group_vars/`, `host_vars/` beside each (see
    vnetctl.inventory.formats)."""
    paths = [Path(s) for s in (sources if isinstance(sources, list) else [sources])]
    if not paths:
        raise InputError("no inventory given: -i FILE or DIRECTORY", None)
    builder = _Builder(paths[0])
    builder._group_draft(ALL, Location(str(paths[0]), 1))
    bases = []
    for path in paths:
        if is_host_list(path):  # `-i kvm1,kvm2:2222,`: Ansible's host_list
            names = [n.strip() for n in str(path).split(",") if n.strip()]
            builder.source({ALL: {"hosts": dict.fromkeys(names)}}, path)
            continue
        if not path.exists():
            raise InputError("inventory file or directory not found (-i)", Location(str(path)))
        for file in source_files(path):
            read_file(file, builder.source, builder.group, set(builder.groups))
        bases.append(path if path.is_dir() else path.parent)
    return _finish(builder, bases)


def is_host_list(source: Path) -> bool:
    """A source that is no file and holds a comma is a list of hosts, as in Ansible (no
    group_vars/ or host_vars/ are read for it)."""
    return "," in str(source) and not source.exists()
