"""The small values a playbook is made of, each checked where it is written: tags,
conditions, variables, durations, file names."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from vnetctl.durations import parse_duration
from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.inventory.connection import PERSIST_MODES
from vnetctl.inventory.sources import VarLayer
from vnetctl.templar import is_template
from vnetctl.yamlsrc import where_of


def near(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def tags(value: Any, at: Location, context: str) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(t, str | int) for t in items):
        raise InputError("tags must be a string or a list of strings", at, context)
    return [str(t).strip() for t in items if str(t).strip()]


def when(value: Any, at: Location, context: str) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    result = []
    for item in items:
        if isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item.strip():
            raise InputError(
                "when must be a Jinja expression or a list of them, e.g. `when: uplink is defined`",
                at,
                context,
            )
        if "{{" in item or "{%" in item:
            raise InputError(
                f"when is a Jinja expression already: write `x == 1`, not `{{{{ x == 1 }}}}` "
                f"(got {item!r})",
                at,
                context,
            )
        result.append(item.strip())
    return result


def variables(data: Any, key: str, at: Location, context: str) -> VarLayer:
    """`data[key]` (a `vars:` mapping) as a layer: names usable in templates, each line."""
    value = data.get(key) if isinstance(data, dict) else None
    key_at = where_of(data, key, at)
    layer = VarLayer()
    if value is None:
        return layer
    if not isinstance(value, dict):
        raise InputError(f"{key} must be a mapping", key_at, context)
    check_names(value, key_at, context)
    layer.update(value, key_at, key)
    return layer


def check_names(values: dict, at: Location, context: str) -> None:
    for name in values:
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(
                f"variable name {name!r} is not usable in templates (letters, digits, _)",
                where_of(values, name, at),
                context,
            )


def duration(value: object, at: Location, context: str, what: str, low: float, high: float):
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InputError(f"{what}: {exc}", at, context) from None
    if not low <= seconds <= high:
        raise InputError(f"{what}: {value!r} is outside {_span(low)}..{_span(high)}", at, context)
    return seconds


def persist_mode(value: object, at: Location, context: str) -> str:
    """`persist:` (a play's, or the inventory's vnetctl_persist): networkd or none."""
    if value not in PERSIST_MODES:
        raise InputError(
            f"persist: {value!r} is not one of {', '.join(PERSIST_MODES)} (leave it "
            "out for networkd where the host runs systemd-networkd)",
            at,
            context,
        )
    return str(value)


def _span(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def file_name(value: Any, keyword: str, at: Location, context: str) -> str:
    """A literal file name: vnetctl reads every file before any host is contacted, so
    a name that depends on a host (a template) cannot be resolved."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"{keyword} takes a file name, got {type_name(value)} {value!r}", at, context
        )
    if is_template(value):
        raise InputError(
            f"{keyword}: the file name must be written out ({value!r} is a template): vnetctl "
            "reads every file when it loads the playbook, before any host",
            at,
            context,
        )
    return value.strip()


def resolve(name: str, base: Path) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else base / path


def inside(name: str, path: Path, base: Path, keyword: str, at: Location, context: str) -> None:
    """A relative file name stays inside the directory of the file naming it, also
    through symlinks: a playbook cannot quietly read /etc/shadow as variables. An
    absolute name is the author's explicit choice (a secrets file kept outside the
    repository), visible in review."""
    if Path(name).expanduser().is_absolute():
        return
    if not path.resolve().is_relative_to(base.resolve()):
        raise InputError(
            f"{keyword}: {name} leads outside {base} (through '..' or a symlink): keep the "
            "file under the playbook's directory, or write its absolute path",
            at,
            context,
        )
