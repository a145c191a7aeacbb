"""Which inventory files a source is, and what format each is in.

A source is a file or a directory. A directory is read as Ansible reads it: every entry
in sorted order, subdirectories too, except hidden names, `group_vars`, `host_vars`,
`vars_plugins` and names ending in .pyc .pyo .swp .bak ~ .rpm .md .txt .rst .orig .cfg
.retry (Ansible's ignored extensions); its own `group_vars/`, `host_vars/` are read once,
from the directory given (for a file: from the file's directory).

A file is an inventory script (executable, starting with `#!`: run, see
vnetctl.inventory.script), YAML (Ansible's `yaml` plugin shape), INI (see
vnetctl.inventory.ini), or the JSON `ansible-inventory --list` prints: groups with
`hosts` and `children` as lists, and every host's variables under `_meta.hostvars`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.inventory.ini import looks_like_ini, read_ini
from vnetctl.inventory.script import is_script, script_inventory
from vnetctl.vault import values as vault_values
from vnetctl.yamlsrc import YamlMap, load_yaml_file, where_of

_IGNORED = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$"
    r"|(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)
YAML_EXTENSIONS = ("", ".yml", ".yaml", ".json")
META = "_meta"


def source_files(source: Path) -> list[Path]:
    """The inventory files of a source, in the order Ansible reads them."""
    if not source.is_dir():
        return [source]
    found: list[Path] = []
    for entry in sorted(source.iterdir(), key=lambda p: p.name):
        if not _IGNORED.search(entry.name):
            found += source_files(entry)
    return found


def is_list_json(data: Any) -> bool:
    """The shape `ansible-inventory --list` prints: it always has `_meta`."""
    return isinstance(data, dict) and META in data


def as_yaml_shape(data: dict[str, Any], at: Location) -> YamlMap:
    """`--list` JSON as the YAML plugin's shape: lists become mappings, hostvars host
    entries (in `all`: a host in no other group is still `ungrouped`)."""
    vault_values.decrypt_json(data, at)
    meta = data.get(META) or {}
    hostvars = meta.get("hostvars") or {} if isinstance(meta, dict) else {}
    if not isinstance(hostvars, dict):
        raise InputError("_meta.hostvars must be a mapping of host -> variables", at)
    shaped = YamlMap(where=at)
    for name, body in data.items():
        if name == META:
            continue
        if not isinstance(body, dict):
            shaped[name] = body  # the builder says what is wrong with it
            continue
        group = YamlMap(where=where_of(data, name, at))
        for key, value in body.items():
            listed = key in ("hosts", "children") and isinstance(value, list)
            group[key] = dict.fromkeys(value) if listed else value
        shaped[name] = group
    if hostvars:
        all_group = shaped.setdefault("all", YamlMap(where=at))
        hosts = dict(all_group.get("hosts") or {})
        hosts.update({h: v or None for h, v in hostvars.items()})
        all_group["hosts"] = hosts
    return shaped


def read_file(
    path: Path,
    top: Callable[[Any, Path], None],
    group: Callable[[str, Any, Location, str | None], None],
    known: Collection[str] = (),
) -> None:
    """Read one inventory file: YAML or `--list` JSON through `top`, INI through
    `group` (`known`: the groups of earlier sources). A file that loads as a YAML
    mapping is YAML, one that starts with an [INI section] or does not load is INI (as
    Ansible tries its yaml plugin, then ini); a .yml/.yaml/.json file that is neither
    gets the YAML error."""
    if not path.is_file():
        raise InputError("inventory file or directory not found (-i)", Location(str(path)))
    if is_script(path):
        top(script_inventory(path), path)
        return
    yaml_named = path.suffix in YAML_EXTENSIONS[1:]
    text = path.read_text(errors="replace")
    try:
        data = load_yaml_file(path)
    except InputError:
        if yaml_named and not looks_like_ini(text):
            raise
        data = None
    if isinstance(data, dict):
        if is_list_json(data):
            data = as_yaml_shape(data, Location(str(path), 1))
        top(data, path)
    elif yaml_named and not looks_like_ini(text):
        top(data, path)  # says what a YAML inventory must be
    else:
        read_ini(path, text, group, known)
