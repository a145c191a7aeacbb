"""Task arguments checked against a module's Ansible-style argument spec.

A spec maps each argument to `{"type": ..., "required": ..., "choices": [...],
"default": ..., "elements": ..., "options": {...}, "aliases": [...]}`; type is one of str
(the default), int, float, bool, list (with an `elements` type), dict, raw, or a name type
of the host library (`ifname`: an interface name, `meshname`): the rule a host applies to
a name is the one checked here, before any host is touched. `options` gives the keys of a
dict (or of each dict of a list): unknown keys are refused. Values are converted the way
Ansible converts them: "9000" -> 9000 for an int, 9000.0 -> 9000 (but 9000.5 is an error),
"yes"/"true"/"on"/1 -> True for a bool, an int -> "100" for a str, "a,b" -> ["a", "b"]
for a list. A bool is never taken for an int or a str.

Partial desired state: an argument that is not given (or given as null) and has no
default is left out of the result, meaning "keep what the host has".
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import json
import types
from collections.abc import Callable, Mapping
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.templar import has_templates, parse_bool
from vnetctl.yamlsrc import type_name

WhereOf = Callable[[str | None], Location]
TYPES = ("str", "int", "float", "bool", "list", "dict", "raw", "ifname", "meshname")


class _BadValue(Exception):
    pass


def _names(spec: Mapping[str, dict]) -> dict[str, str]:
    """Every accepted name (arguments and their aliases) -> the argument's name."""
    names = {name: name for name in spec}
    for name, rule in spec.items():
        for alias in rule.get("aliases") or ():
            names[alias] = name
    return names


def check_arg_names(
    module: str,
    spec: Mapping[str, dict],
    args: Mapping[str, Any],
    where_of: WhereOf,
    context: str = "",
) -> dict[str, str]:
    """Unknown arguments (with close names suggested), an argument given twice under
    aliases, missing required ones. Returns given name -> argument name."""
    names = _names(spec)
    given: dict[str, str] = {}
    for key in args:
        if key not in names:
            close = difflib.get_close_matches(str(key), list(names), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            known = ", ".join(sorted(spec)) or "none"
            raise InputError(
                f"unknown argument '{key}' for module '{module}'{hint}; known: {known}",
                where_of(key),
                context,
            )
        other = next((k for k, v in given.items() if v == names[key]), None)
        if other is not None:
            raise InputError(
                f"argument '{names[key]}' is given twice, as '{other}' and '{key}'",
                where_of(key),
                context,
            )
        given[key] = names[key]
    for name, rule in spec.items():
        if rule.get("required") and name not in given.values():
            raise InputError(
                f"missing required argument '{name}' for module '{module}'", where_of(None), context
            )
    return given


def _describe(value: Any) -> str:
    return f"{value!r} ({type_name(value)})"


@functools.cache
def _host_lib() -> types.ModuleType:
    """The host library (vnet_host), for its name rules: one rule, host and controller."""
    from vnetctl.catalog import Catalog  # noqa: PLC0415 (loads modules/ once, on first use)

    return Catalog().host_lib()


def _checked_name(value: Any, kind: str) -> str:
    text = convert(value, "str")
    problem = _host_lib().name_problem(kind, text)
    if problem is not None:
        raise _BadValue(problem)
    return text


def convert(value: Any, kind: str, elements: str | None = None) -> Any:
    """`value` as `kind`, or _BadValue saying what was expected."""
    if kind == "raw":
        return value
    if kind in ("ifname", "meshname"):
        return _checked_name(value, kind)
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _BadValue(f"expected a string, got {_describe(value)}")
    if kind == "int":
        if isinstance(value, bool):
            raise _BadValue(f"expected an integer, got {_describe(value)}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _BadValue(f"expected an integer, got {_describe(value)}")
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _BadValue(f"expected a number, got {_describe(value)}")
    if kind == "bool":
        parsed = parse_bool(value)
        if parsed is None:
            raise _BadValue(f"expected true or false (yes/no), got {_describe(value)}")
        return parsed
    if kind == "list":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise _BadValue(f"expected a list, got {_describe(value)}")
        if elements is None:
            return list(value)
        result = []
        for i, item in enumerate(value, 1):
            try:
                result.append(convert(item, elements))
            except _BadValue as exc:
                raise _BadValue(f"item {i}: {exc}") from None
        return result
    if kind == "dict":
        if isinstance(value, str) and value.strip().startswith("{"):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        if not isinstance(value, dict):
            raise _BadValue(f"expected a mapping, got {_describe(value)}")
        return dict(value)
    raise ValueError(f"argument spec: unknown type {kind!r} (known: {', '.join(TYPES)})")


def _check_choices(value: Any, choices: list, kind: str) -> None:
    items = value if kind == "list" else [value]
    for item in items:
        if item not in choices:
            listed = ", ".join(str(c) for c in choices)
            close = difflib.get_close_matches(str(item), [str(c) for c in choices], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _BadValue(f"{item!r} is not one of: {listed}{hint}")


def _with_options(value: Any, kind: str, options: Mapping[str, dict]) -> Any:
    """Each dict (the value, or each item of a list) checked against `options`."""
    if kind == "list":
        result = []
        for i, item in enumerate(value, 1):
            try:
                result.append(_with_options(item, "dict", options))
            except _BadValue as exc:
                raise _BadValue(f"item {i}: {exc}") from None
        return result
    if not isinstance(value, dict):
        raise _BadValue(f"expected a mapping, got {_describe(value)}")
    result = {}
    for key, item in value.items():
        if key not in options:
            close = difflib.get_close_matches(str(key), list(options), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            known = ", ".join(sorted(options))
            raise _BadValue(f"unknown key '{key}'{hint}; known: {known}")
        rule = options[key]
        if item is None:
            continue
        try:
            result[key] = _value(rule, item)
        except _BadValue as exc:
            raise _BadValue(f"{key}: {exc}") from None
    for key, rule in options.items():
        if rule.get("required") and result.get(key) is None:
            raise _BadValue(f"missing required key '{key}'")
    return result


def _value(rule: dict, value: Any) -> Any:
    kind = rule.get("type", "str")
    converted = convert(value, kind, rule.get("elements"))
    if rule.get("options") is not None:
        converted = _with_options(converted, kind, rule["options"])
    if rule.get("choices") is not None:
        _check_choices(converted, rule["choices"], kind)
    return converted


def _checked(module: str, name: str, rule: dict, value: Any, at: Location, context: str) -> Any:
    try:
        converted = _value(rule, value)
    except _BadValue as exc:
        raise InputError(f"argument '{name}' of module '{module}': {exc}", at, context) from None
    return converted


def check_literal_args(
    module: str,
    spec: Mapping[str, dict],
    args: Mapping[str, Any],
    where_of: WhereOf,
    context: str = "",
) -> None:
    """At load time: argument names, required arguments, and the values that hold no
    template (those are the same for every host)."""
    given = check_arg_names(module, spec, args, where_of, context)
    for key, value in args.items():
        if value is not None and not has_templates(value):
            _checked(module, given[key], spec[given[key]], value, where_of(key), context)


def validate_args(
    module: str,
    spec: Mapping[str, dict],
    args: Mapping[str, Any],
    where_of: WhereOf,
    context: str = "",
) -> dict[str, Any]:
    """Checked and converted arguments, defaults filled in; InputError at the argument's
    line otherwise. `where_of(name)` gives an argument's line (None: the task's line)."""
    given = check_arg_names(module, spec, args, where_of, context)
    result: dict[str, Any] = {}
    for key, value in args.items():
        name = given[key]
        rule = spec[name]
        if value is None:
            if rule.get("required"):
                raise InputError(
                    f"argument '{name}' of module '{module}' is required: it cannot be null",
                    where_of(key),
                    context,
                )
            continue
        result[name] = _checked(module, name, rule, value, where_of(key), context)
    for name, rule in spec.items():
        if name not in result and rule.get("default") is not None:
            result[name] = copy.deepcopy(rule["default"])
    return result
