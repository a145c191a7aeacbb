"""Ansible's INI inventory format, read into the same groups and variables as YAML.

    web1 ansible_host=10.0.0.1          # before any section: in `ungrouped`
    [kvm]
    kvm[01:03] ansible_user=ops         # a range; host variables on the host line
    kvm9:2222                           # a port: ansible_port
    [kvm:vars]
    mtu = 9000                          # group variables, one `key = value` a line
    [dc:children]
    kvm                                 # child groups, one a line

Values are read as Ansible's ini plugin reads them: a Python literal (`9000`, `True`,
`[1, 2]`, `'quoted'`) becomes that value, anything else stays a string. As in Ansible, a
`[g:vars]` section or a child `g` may come before `[g]` (or `[g:children]`), but a group
that is never declared (nor known from an earlier source) is an error. Each line is
handed to the YAML inventory's builder as a small group mapping carrying its line, so
names, hosts and errors are checked once, the same way.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.yamlsrc import YamlMap

_SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?")
SECTION_KINDS = ("hosts", "vars", "children")

# group(name, body, where, parent): the YAML builder's entry for one group mapping
GroupSink = Callable[[str, Any, Location, "str | None"], None]


def literal(text: str) -> Any:
    """A value as Ansible's ini plugin reads it: a Python literal, else the text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def looks_like_ini(text: str) -> bool:
    """True when the first line that is not blank or a comment is an INI section."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";")):
            return bool(_SECTION.fullmatch(stripped))
    return False


def _mapping(values: dict[str, Any], at: Location) -> YamlMap:
    result = YamlMap(values, where=at)
    result.key_lines = dict.fromkeys(values, at.line)
    return result


def _host_line(line: str, at: Location) -> YamlMap:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise InputError(f"cannot read host line: {exc} (an unclosed quote?)", at) from None
    variables: dict[str, Any] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise InputError(
                f"host '{tokens[0]}': expected key=value after the host name, got '{token}'", at
            )
        variables[key] = literal(value)
    host_vars = _mapping(variables, at) if variables else None
    return _mapping({tokens[0]: host_vars}, at)


def read_ini(path: Path, text: str, group: GroupSink, known: Collection[str]) -> None:
    """Feed every line of the INI inventory `text` (from `path`) to `group`; `known`:
    the groups earlier sources declared."""
    name, kind = "ungrouped", "hosts"
    declared = {"all", "ungrouped", *known}
    pending: dict[str, tuple[Location, str]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        at = Location(str(path), number)
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            match = _SECTION.fullmatch(line)
            if not match:
                raise InputError(
                    f"invalid section header '{line}': expected [group], [group:vars] or "
                    "[group:children]",
                    at,
                )
            name, kind = match.group(1), match.group(2) or "hosts"
            if kind not in SECTION_KINDS:
                raise InputError(
                    f"section [{name}:{kind}] has unknown type '{kind}': expected "
                    f"[{name}], [{name}:vars] or [{name}:children]",
                    at,
                )
            if kind != "vars":
                declared.add(name)
            elif name not in declared:
                pending.setdefault(name, (at, f"section [{name}:vars] is for group '{name}'"))
            group(name, None, at, None)
        elif kind == "hosts":
            group(name, _mapping({"hosts": _host_line(line, at)}, at), at, None)
        elif kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise InputError(f"[{name}:vars]: expected key = value, got '{line}'", at)
            variables = _mapping({key.strip(): literal(value.strip())}, at)
            group(name, _mapping({"vars": variables}, at), at, None)
        else:
            child = line.split("#", 1)[0].split(";", 1)[0].strip()
            if child not in declared:
                pending.setdefault(child, (at, f"[{name}:children] names group '{child}'"))
            group(child, None, at, name)
    for missing, (at, what) in pending.items():
        if missing not in declared:
            raise InputError(f"{what}, which is declared nowhere: add a [{missing}] section", at)
