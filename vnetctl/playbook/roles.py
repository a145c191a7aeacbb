"""Roles in their simple, common form: `roles/NAME/tasks/main.yml`, `defaults/main.yml`
and `vars/main.yml` (each optional; `main.yaml`, `main.json` or `main` work too).

A play lists them under `roles:`, by name or as `{role: NAME, vars: {...}, tags: [...],
when: ...}`. A name is looked up, as Ansible does, in `roles/` beside the playbook, then
in each directory of the roles path (`--roles-path`, else VNETCTL_ROLES_PATH, else
ANSIBLE_ROLES_PATH: directories separated by `:`), then beside the playbook itself; a
name holding a `/` is a path (relative to the playbook). The same role listed twice
with the same vars, tags and when runs once, as in Ansible.

Refused with a reason: role dependencies (`meta/main.yml`), role parameters written
beside `role:` (Ansible's old form, with its own precedence: write them under `vars:`),
and keywords other than the above.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.inventory.sources import VarLayer
from vnetctl.playbook import fields
from vnetctl.playbook.model import Role
from vnetctl.yamlsrc import load_vars_file, load_yaml_file, where, where_of

ENTRY_KEYS = ("role", "vars", "tags", "when")
MAIN_NAMES = ("main.yml", "main.yaml", "main.json", "main")


@dataclass
class RoleUse:
    """A role as one play entry uses it."""

    role: Role
    tasks_file: Path | None
    vars: VarLayer = field(default_factory=VarLayer)  # the entry's `vars:` (block level)
    tags: list[str] = field(default_factory=list)
    when: list[str] = field(default_factory=list)
    when_where: Location | None = None

    def key(self) -> tuple:
        """What makes two entries the same use of a role (Ansible runs it once)."""
        return (self.role.path, repr(sorted(self.vars.values.items())), tuple(self.tags),
                tuple(self.when))  # fmt: skip


def roles_path(option: str | None = None) -> list[Path]:
    """The configured roles path: the option, else VNETCTL_ROLES_PATH, else
    ANSIBLE_ROLES_PATH."""
    text = option
    if text is None:
        text = os.environ.get("VNETCTL_ROLES_PATH") or os.environ.get("ANSIBLE_ROLES_PATH")
    return [Path(p).expanduser() for p in (text or "").split(":") if p.strip()]


def role_use(entry: Any, at: Location, base: Path, search: list[Path], context: str) -> RoleUse:
    """One item of a play's `roles:`, its role found and its variables loaded."""
    if isinstance(entry, str):
        entry = {"role": entry}
    if not isinstance(entry, dict):
        raise InputError(
            f"a role is a name or a mapping with `role:`, got {type_name(entry)} {entry!r}",
            at,
            context,
        )
    at = where(entry, at)
    name = entry.get("role", entry.get("name"))
    if not isinstance(name, str) or not name.strip():
        raise InputError("a role entry needs `role: NAME`", at, context)
    for key in entry:
        if key not in (*ENTRY_KEYS, "name"):
            hint = (
                f"role parameters go under `vars:` (`vars: {{{key}: ...}}`)"
                if isinstance(key, str) and key.isidentifier() and key not in _KEYWORDS
                else f"a role entry has {', '.join(ENTRY_KEYS)}"
            )
            raise InputError(
                f"role '{name}': unknown key '{key}'{fields.near(str(key), ENTRY_KEYS)}: {hint}",
                where_of(entry, key, at),
                context,
            )
    directory = find_role(name.strip(), base, search, where_of(entry, "role", at), context)
    role = load_role(Path(name.strip()).name, directory, at)  # a path: its last part
    use = RoleUse(role=role, tasks_file=_main(directory / "tasks", at))
    use.vars = fields.variables(entry, "vars", at, context)
    use.tags = fields.tags(entry.get("tags"), where_of(entry, "tags", at), context)
    use.when_where = where_of(entry, "when", at)
    use.when = fields.when(entry.get("when"), use.when_where, context)
    return use


# keywords Ansible allows on a role entry that vnetctl does not: not taken for parameters
_KEYWORDS = {"become", "become_user", "delegate_to", "environment", "ignore_errors",
             "any_errors_fatal", "no_log", "check_mode", "diff", "collections"}  # fmt: skip


def find_role(name: str, base: Path, search: list[Path], at: Location, context: str) -> Path:
    if "/" in name:
        candidates = [fields.resolve(name, base)]
    else:
        candidates = [base / "roles" / name, *(p / name for p in search), base / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise InputError(
        f"role '{name}' not found (looked in {looked}; more directories with --roles-path "
        "or VNETCTL_ROLES_PATH)",
        at,
        context,
    )


def load_role(name: str, directory: Path, at: Location) -> Role:
    context = f"role '{name}'"
    meta = _main(directory / "meta", at)
    if meta is not None:
        data = load_yaml_file(meta)
        if isinstance(data, dict) and data.get("dependencies"):
            raise InputError(
                "role dependencies are not supported: list the roles it depends on before "
                "it under the play's roles:",
                where_of(data, "dependencies", Location(str(meta), 1)),
                context,
            )
    role = Role(name=name, path=str(directory), where=at)
    role.defaults = _vars_file(directory / "defaults", at, context)
    role.vars = _vars_file(directory / "vars", at, context)
    return role


def _main(folder: Path, at: Location) -> Path | None:
    for name in MAIN_NAMES:
        candidate = folder / name
        if candidate.is_dir():
            raise InputError(
                f"{candidate}: a directory; vnetctl reads a role's {folder.name}/main.yml file",
                at,
            )
        if candidate.is_file():
            return candidate
    return None


def _vars_file(folder: Path, at: Location, context: str) -> VarLayer:
    path = _main(folder, at)
    layer = VarLayer()
    if path is None:
        return layer
    data = load_vars_file(path, f"{folder.name}/{path.name}", context)
    layer.update(data, Location(str(path), 1), path.name)
    return layer
