"""Playbooks: a YAML list of plays, each with `hosts` and `tasks`, checked as loaded.

A play: `hosts` (a host pattern or a list of them, required), `name`, `vars` (a
mapping), `tasks` (a list), `tags`, `confirm_timeout` (commit confirmed: a duration such
as 60 or 2m, see README); `gather_facts` is accepted and ignored (vnetctl reads the
facts each module needs). A task: one module key with its arguments (a mapping,
nothing, or Ansible's `key=value` string), and optionally `name`, `when` (a Jinja
expression, or a list of them that must all hold) and `tags` (a string, comma-separated,
or a list). Anything else is an error at its file:line naming the play and the task.
Argument names are checked here against the module's spec; their values, which may be
templates, are checked per host when rendered (vnetctl.playbook.render).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vnetctl.durations import parse_duration
from vnetctl.errors import InputError, Location
from vnetctl.playbook.extra_vars import parse_kv
from vnetctl.playbook.model import Play, Task
from vnetctl.playbook.validate import check_literal_args
from vnetctl.yamlsrc import load_yaml_file, type_name, where, where_of

PLAY_KEYWORDS = ("name", "hosts", "vars", "tasks", "tags", "confirm_timeout", "gather_facts")
TASK_KEYWORDS = ("name", "when", "tags")
PLAY_HINTS = {
    "become": "set ansible_become (or vnetctl_become) for the hosts in the inventory",
    "become_user": "set ansible_become_user for the hosts in the inventory",
    "remote_user": "set ansible_user for the hosts in the inventory",
    "vars_files": "put variables in group_vars/ or host_vars/, or pass -e @FILE",
    "roles": "vnetctl has no roles: write the tasks in the play",
    "pre_tasks": "write them first in `tasks`",
    "post_tasks": "write them last in `tasks`",
}


def _near(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _tags(value: Any, at: Location, context: str) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(t, str | int) for t in items):
        raise InputError("tags must be a string or a list of strings", at, context)
    return [str(t).strip() for t in items if str(t).strip()]


def _when(value: Any, at: Location, context: str) -> list[str]:
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


def _module_args(value: Any, at: Location, context: str, module: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_kv(value, at, f"{context}: arguments of {module}")
    if not isinstance(value, dict):
        raise InputError(
            f"the arguments of module '{module}' must be a mapping, got "
            f"{type_name(value)} {value!r}",
            at,
            context,
        )
    for key in value:
        if not isinstance(key, str):
            raise InputError(f"argument name {key!r} must be a string", at, context)
    return value


def _duration(value: object, at: Location, context: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InputError(f"confirm_timeout: {exc}", at, context) from None
    if not 5 <= seconds <= 3600:
        raise InputError(f"confirm_timeout: {value!r} is outside 5s..1h", at, context)
    return seconds


def parse_task(
    data: Any, index: int, play: Play, catalog: Mapping[str, dict], at: Location
) -> Task:
    if not isinstance(data, dict):
        raise InputError(
            f"a task must be a mapping (`- name: ...` then one module), got {data!r}",
            at,
            play.context(),
        )
    at = where(data, at)
    name = data.get("name")
    if name is not None and not isinstance(name, str | int | float):
        raise InputError("task name must be a string", where_of(data, "name", at), play.context())
    others = [k for k in data if k not in TASK_KEYWORDS]
    modules = [k for k in others if isinstance(k, str) and k in catalog]
    strays = [k for k in others if k not in modules]
    module = modules[0] if modules else str(strays[0]) if strays else ""
    task = Task(index=index, module=module, args={}, name=str(name) if name is not None else None)
    task.where = at
    context = play.context(task) if task.display_name else play.context()
    known = ", ".join(sorted(catalog))
    if len(modules) > 1:
        raise InputError(
            f"one task runs one module, this one names {len(modules)}: "
            f"{', '.join(modules)} (write one task per module)",
            where_of(data, modules[1], at),
            context,
        )
    if modules and strays:
        word = str(strays[0])
        raise InputError(
            f"unknown task keyword '{word}'{_near(word, [*TASK_KEYWORDS, *catalog])}: a task "
            f"has one module and optionally {', '.join(TASK_KEYWORDS)}",
            where_of(data, strays[0], at),
            context,
        )
    if not modules:
        if not strays:
            raise InputError(f"task names no module (known: {known})", at, context)
        word = str(strays[0])
        raise InputError(
            f"unknown module '{word}'{_near(word, list(catalog))} (known: {known})", at, context
        )
    module_at = where_of(data, module, at)
    task.args = _module_args(data[module], module_at, context, module)
    task.arg_where = {k: where_of(task.args, k, module_at) for k in task.args}
    task.when_where = where_of(data, "when", at)
    task.when = _when(data.get("when"), task.when_where, context)
    task.tags = _tags(data.get("tags"), where_of(data, "tags", at), context)
    check_literal_args(module, catalog[module], task.args, task.where_of, context)
    return task


def parse_play(data: Any, at: Location, catalog: Mapping[str, dict]) -> Play:
    if not isinstance(data, dict):
        raise InputError(f"a play must be a mapping with 'hosts' and 'tasks', got {data!r}", at)
    at = where(data, at)
    name = data.get("name")
    play = Play(hosts="", name=str(name) if name is not None else "", where=at)
    for key in data:
        if key not in PLAY_KEYWORDS:
            word = str(key)
            hint = PLAY_HINTS.get(word) or f"a play has {', '.join(PLAY_KEYWORDS)}"
            raise InputError(
                f"unknown play keyword '{word}'{_near(word, PLAY_KEYWORDS)}: {hint}",
                where_of(data, key, at),
                play.context() if name is not None else "",
            )
    context = play.context() if name is not None else ""
    hosts = data.get("hosts")
    play.hosts_where = where_of(data, "hosts", at)
    if isinstance(hosts, list) and hosts and all(isinstance(h, str | int) for h in hosts):
        play.hosts = [str(h) for h in hosts]
    elif isinstance(hosts, str | int) and str(hosts).strip():
        play.hosts = str(hosts)
    else:
        raise InputError(
            "a play needs `hosts:` with a host pattern (e.g. `all`, a group, `kvm*`)",
            play.hosts_where,
            context,
        )
    context = play.context()
    variables = data.get("vars")
    if variables is not None and not isinstance(variables, dict):
        raise InputError("vars must be a mapping", where_of(data, "vars", at), context)
    for key in variables or {}:
        if not isinstance(key, str) or not key.isidentifier():
            raise InputError(
                f"variable name {key!r} is not usable in templates (letters, digits, _)",
                where_of(variables, key, at),
                context,
            )
    play.vars = dict(variables or {})
    play.var_where = {k: where_of(variables, k, at) for k in play.vars}
    play.tags = _tags(data.get("tags"), where_of(data, "tags", at), context)
    if data.get("confirm_timeout") is not None:
        play.confirm_timeout = _duration(
            data["confirm_timeout"], where_of(data, "confirm_timeout", at), context
        )
    tasks = data.get("tasks")
    if tasks is not None and not isinstance(tasks, list):
        raise InputError("tasks must be a list", where_of(data, "tasks", at), context)
    tasks_at = where_of(data, "tasks", at)
    play.tasks = [
        parse_task(t, i, play, catalog, where_of(tasks, i, tasks_at))
        for i, t in enumerate(tasks or [])
    ]
    return play


def parse_playbook(data: Any, file: str, catalog: Mapping[str, dict]) -> list[Play]:
    start = Location(file, 1)
    if data is None:
        raise InputError("the playbook is empty: expected a list of plays", start)
    if not isinstance(data, list):
        raise InputError(
            f"a playbook is a list of plays (`- hosts: ...`), got a {type_name(data)}",
            where(data, start),
        )
    plays = []
    for i, item in enumerate(data):
        item_at = where_of(data, i, start)
        if isinstance(item, dict) and "import_playbook" in item:
            raise InputError("import_playbook is not supported", item_at)
        plays.append(parse_play(item, item_at, catalog))
    return plays


def load_playbook(path: str | Path, catalog: Mapping[str, dict]) -> list[Play]:
    """Load and check a playbook; `catalog`: module name -> argument spec."""
    return parse_playbook(load_yaml_file(path), str(path), catalog)
