"""Extra variables (`-e`), the highest precedence: `key=value ...`, `@FILE`, or a mapping.

- `-e 'vm_mtu=1500 uplink=eth2'`: shell-style words (quotes work); each value is read as
  a YAML scalar, so 1500 is an int, 1.5 a float, true/yes/on a bool, null None,
  `[eth1, eth2]` a list; quote the value to keep a string (`-e 'mtu="9000"'`). Unlike
  YAML 1.1, 010 and 1:30 stay strings (not 8 and 90). An empty value is "".
- `-e @vars.yml` / `-e @vars.json`: a file holding a mapping (errors give its file:line,
  never its content: see vnetctl.yamlsrc.load_vars_file).
- `-e '{"vm_mtu": 1500}'` or `-e '{vm_mtu: 1500}'`: a JSON or YAML mapping.

Several `-e` are merged in order, later values replacing earlier ones.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from vnetctl.errors import InputError, Location
from vnetctl.playbook.fields import check_names
from vnetctl.yamlsrc import load_vars_file, load_yaml_text, safe_load_bounded, where

CLI = Location("-e")


_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)")
_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _scalar(text: str) -> Any:
    """A key=value value: int, float, bool (true/yes/on, false/no/off), null, a quoted
    string, a flow list or mapping ([a, b], {k: v}), else the text itself. Not YAML 1.1's
    surprises: 010 and 1:30 stay strings (YAML reads them as 8 and 90)."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    if text in ("null", "Null", "NULL", "~"):
        return None
    if text[:1] in ("[", "{", "'", '"'):
        try:
            value = safe_load_bounded(text, "-e")
        except yaml.YAMLError:
            return text
        if isinstance(value, list | dict | str):
            return value
    return text


def parse_kv(text: str, at: Location = CLI, context: str = "") -> dict[str, Any]:
    """`key=value key2="two words"` -> {"key": ..., "key2": "two words"}."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InputError(f"cannot split {text!r}: {exc}", at, context) from None
    result: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key.isidentifier():
            raise InputError(
                f"expected key=value (the key a variable name), got {word!r}", at, context
            )
        result[key] = _scalar(value)
    return result


def _mapping(data: Any) -> dict[str, Any]:
    """An inline `-e` mapping (typed on the command line, so its errors may quote it)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("-e must be a mapping of variables", where(data, CLI))
    check_names(data, CLI, "")
    return dict(data)


def parse_extra_vars_one(value: str) -> dict[str, Any]:
    """One `-e` value."""
    text = value.strip()
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.exists():  # say which of the files given is missing
            raise InputError(f"extra-vars file not found (-e @{path})", Location(str(path)))
        return dict(load_vars_file(path, f"-e @{path}") or {})
    if text.startswith(("{", "---")):
        return _mapping(load_yaml_text(text, "-e"))
    return parse_kv(text)


def parse_extra_vars(values: Iterable[str] | str | None) -> dict[str, Any]:
    """All `-e` values merged, later ones winning."""
    if values is None:
        return {}
    if isinstance(values, str):
        values = [values]
    result: dict[str, Any] = {}
    for value in values:
        result.update(parse_extra_vars_one(value))
    return result
