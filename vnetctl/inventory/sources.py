"""Reading the pieces of an inventory: variables with the file:line where each was set
(from the inventory's `vars`, a host's entry, `group_vars/` and `host_vars/` files), and host
name ranges."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.yamlsrc import load_vars_file, where_of

VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")
_RANGE = re.compile(r"\[([0-9a-zA-Z]*):([0-9a-zA-Z]+)(?::(\d+))?\]")


@dataclass
class VarLayer:
    """Variables of one source with where each was set."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Location] = field(default_factory=dict)

    def update(self, data: Any, fallback: Location, what: str) -> None:
        if data is None:
            return
        if not isinstance(data, dict):
            got = type_name(data)
            raise InputError(f"{what} must be a mapping of variables, got {got}", fallback)
        for key, value in data.items():
            if not isinstance(key, str):
                raise InputError(
                    f"variable name {key!r} must be a string", where_of(data, key, fallback)
                )
            self.values[key] = value
            self.origins[key] = where_of(data, key, fallback)


def _dir_files(directory: Path) -> list[Path]:
    """Ansible's order: sorted per level, depth first; hidden and backup~ files skipped."""
    found: list[Path] = []
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        if entry.is_dir() and not entry.suffix:
            found += _dir_files(entry)
        elif entry.is_file() and entry.suffix in VARS_EXTENSIONS:
            found.append(entry)
    return found


def _vars_files(folder: Path, name: str) -> list[Path]:
    """The first of NAME, NAME.yml, NAME.yaml, NAME.json that exists (a directory: its
    files); like Ansible, the others are not read."""
    for ext in VARS_EXTENSIONS:
        candidate = folder / f"{name}{ext}"
        if candidate.is_dir():
            return _dir_files(candidate)
        if candidate.exists():
            return [candidate]
    return []


def file_vars(folder: Path, name: str) -> VarLayer:
    result = VarLayer()
    for file in _vars_files(folder, name):
        data = load_vars_file(file, file.name, identifiers=False)
        result.update(data, Location(str(file), 1), file.name)
    return result


def expand_host_range(name: str, where: Location) -> list[str]:
    """Ansible host ranges: `kvm[01:03]` -> kvm01, kvm02, kvm03; `[a:c]`; `[0:10:5]`."""
    match = _RANGE.search(name)
    if not match:
        return [name]
    head, tail = name[: match.start()], name[match.end() :]
    beg, end, step = match.group(1) or "0", match.group(2), int(match.group(3) or 1)
    if beg.isdigit() and end.isdigit():
        width = len(beg) if beg.startswith("0") and len(beg) > 1 else 0
        items = [str(i).zfill(width) for i in range(int(beg), int(end) + 1, step)]
    elif len(beg) == 1 and len(end) == 1 and beg in string.ascii_letters and end.isalpha():
        items = [chr(c) for c in range(ord(beg), ord(end) + 1, step)]
    else:
        raise InputError(f"host range '{match.group(0)}' in '{name}' is not a:b or 01:20", where)
    if not items or step < 1:
        raise InputError(f"host range '{match.group(0)}' in '{name}' is empty", where)
    return [n for item in items for n in expand_host_range(head + item + tail, where)]
