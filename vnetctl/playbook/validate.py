"""Task arguments checked on the controller, before any host is touched, by the host
library's own rulebook (`modules/module_utils/vnet_params.py`: types, conversions,
defaults, choices, ranges, name rules, nested `options`). There is one set of rules; this
file only says where a refused argument is (file:line, play, task) and suggests a close
name ("did you mean 'stp'?").

Partial desired state: an argument that is not given (or given as null) and has no
default is left out of the result, meaning "keep what the host has".
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from vnetctl import hostlib
from vnetctl.errors import InputError, Location
from vnetctl.templar import has_templates

WhereOf = Callable[[str | None], Location]


def _hint(word: Any, known: list[str]) -> str:
    close = difflib.get_close_matches(str(word), known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _inside(path: tuple) -> str:
    """(1, "bridge") -> "item 2: bridge: " (items count from 1, as people do)."""
    return "".join(f"item {p + 1}: " if isinstance(p, int) else f"{p}: " for p in path)


def _refusal(
    module: str, args: Mapping[str, Any], exc: Any, where_of: WhereOf, context: str
) -> InputError:
    """The rulebook's ArgumentError as the operator reads it, at the argument's line."""
    path, top = exc.path, exc.path[0] if exc.path else None
    known = ", ".join(exc.known) or "none"
    if exc.problem == "unknown" and top is None:
        text = (
            f"unknown argument '{exc.word}' for module '{module}'"
            f"{_hint(exc.word, exc.known)}; known: {known}"
        )
        return InputError(text, where_of(exc.word), context)
    if exc.problem == "missing" and len(path) == 1:
        if top in args:  # given, as null
            text = f"argument '{top}' of module '{module}' is required: it cannot be null"
            return InputError(text, where_of(top), context)
        text = f"missing required argument '{top}' for module '{module}'"
        return InputError(text, where_of(None), context)
    if exc.problem == "unknown":
        detail = f"{_inside(path[1:])}unknown key '{exc.word}'{_hint(exc.word, exc.known)}"
        detail += f"; known: {known}"
    elif exc.problem == "missing":
        detail = f"{_inside(path[1:-1])}missing required key '{path[-1]}'"
    else:
        hint = _hint(exc.word, exc.known) if exc.word is not None else ""
        detail = f"{_inside(path[1:])}{exc.text}{hint}"
    return InputError(f"argument '{top}' of module '{module}': {detail}", where_of(top), context)


def check_literal_args(
    module: str,
    spec: Mapping[str, dict],
    args: Mapping[str, Any],
    where_of: WhereOf,
    context: str = "",
) -> None:
    """At load time: argument names, required arguments, and the values that hold no
    template (those are the same for every host)."""
    rules = hostlib.rules()
    try:
        rules.check_spec(spec)
        rules.check_names(spec, args)
        for key, value in args.items():
            if value is not None and not has_templates(value):
                rules.convert(spec[key], value, (key,))
    except rules.ArgumentError as exc:
        raise _refusal(module, args, exc, where_of, context) from None


def validate_args(
    module: str,
    spec: Mapping[str, dict],
    args: Mapping[str, Any],
    where_of: WhereOf,
    context: str = "",
) -> dict[str, Any]:
    """Checked and converted arguments (as rendered for one host), defaults filled in;
    InputError at the argument's line otherwise. `where_of(name)` gives an argument's
    line (None: the task's line)."""
    rules = hostlib.rules()
    try:
        return rules.check_args(spec, args)
    except rules.ArgumentError as exc:
        raise _refusal(module, args, exc, where_of, context) from None
