"""`loop`, with Ansible's semantics: the task once per item of a list, `item` (or
`loop_control.loop_var`) bound to it, `when` evaluated per item, `index_var` and, with
`loop_control.extended`, `ansible_loop` (index, index0, revindex, revindex0, first,
last, length, previtem, nextitem, allitems).

vnetctl's items are tasks of the same stream (one remote process per host per play):
each item is its own result line, named `TASK (item=LABEL)` as Ansible shows it, its own
diff and its own drift resource. Two items of one loop declaring the same object (the
same `name` of a module that has one) would undo each other: refused before any host.

An item's key in the host's stream (HostTask.index): the task's position `t` for item 0,
then `t + n * k` for item k in a play of `n` tasks: unique in the play, the same on every
host, and a task without loop keeps its position.
"""

from __future__ import annotations

import json
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.playbook import fields
from vnetctl.playbook.model import LoopControl, Play, Task
from vnetctl.playbook.variables import Fleet
from vnetctl.templar import LazyVars, TemplateFailure
from vnetctl.yamlsrc import plain, where_of

MAX_ITEMS = 10_000  # items of one loop on one host
LOOP_CONTROL_KEYS = ("loop_var", "index_var", "label", "extended")


def item_index(task: Task, k: int, tasks_in_play: int) -> int:
    return task.index + tasks_in_play * k


def loop_items(fleet: Fleet, play: Play, task: Task, variables: LazyVars) -> list[Any]:
    """The rendered list `loop` gives on this host."""
    at = task.loop_where or task.where
    try:
        items = fleet.templar.render(task.loop, variables)
    except TemplateFailure as exc:
        raise InputError(f"loop: {exc}", at, play.context(task)) from None
    if not isinstance(items, list):
        raise InputError(
            f"loop: must give a list, got {type_name(items)} {_short(items)}",
            at,
            play.context(task),
        )
    if len(items) > MAX_ITEMS:
        raise InputError(f"loop: {len(items)} items, more than {MAX_ITEMS}", at,
                         play.context(task))  # fmt: skip
    return items


def bindings(play: Play, task: Task, items: list[Any], fixed: set[str]) -> list[dict[str, Any]]:
    """Per item, the loop variables it binds."""
    control = task.loop_control
    names = [control.loop_var, *([control.index_var] if control.index_var else [])]
    if control.extended:
        names.append("ansible_loop")
    taken = [n for n in names if n in fixed]
    if taken:
        raise InputError(
            f"loop_control: '{taken[0]}' is a magic variable; name the loop variable otherwise",
            task.loop_where or task.where,
            play.context(task),
        )
    out = []
    count = len(items)
    for k, item in enumerate(items):
        bound = {control.loop_var: item}
        if control.index_var:
            bound[control.index_var] = k
        if control.extended:
            bound["ansible_loop"] = {
                "allitems": items, "index": k + 1, "index0": k, "revindex": count - k,
                "revindex0": count - k - 1, "first": k == 0, "last": k == count - 1,
                "length": count, "previtem": items[k - 1] if k else None,
                "nextitem": items[k + 1] if k + 1 < count else None,
            }  # fmt: skip
        out.append(bound)
    return out


def label(fleet: Fleet, play: Play, task: Task, variables: LazyVars, item: Any) -> str:
    """How the item is named on its result line: loop_control.label, else the item."""
    value = item
    if task.loop_control.label is not None:
        try:
            value = fleet.templar.render(task.loop_control.label, variables)
        except TemplateFailure as exc:
            raise InputError(f"loop_control label: {exc}", task.loop_where or task.where,
                             play.context(task)) from None  # fmt: skip
    return _short(value, limit=200)


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = repr(plain(value))
    else:
        text = json.dumps(value) if value is None or isinstance(value, bool) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_distinct(play: Play, task: Task, names: list[tuple[str, Any]]) -> None:
    """Two items declaring the same object (`name` argument) would undo each other."""
    seen: dict[str, str] = {}
    for item_label, name in names:
        if name is None:
            continue
        key = str(name)
        if key in seen:
            raise InputError(
                f"loop: items {seen[key]!r} and {item_label!r} both declare {task.module} "
                f"{key!r}: each item must be its own object",
                task.loop_where or task.where,
                play.context(task),
            )
        seen[key] = item_label


def parse_loop_control(data: dict, at: Location, context: str) -> LoopControl:
    value = data.get("loop_control")
    control_at = where_of(data, "loop_control", at)
    if value is None:
        return LoopControl()
    if not isinstance(value, dict):
        raise InputError("loop_control must be a mapping", control_at, context)
    control = LoopControl()
    for key, item in value.items():
        key_at = where_of(value, key, control_at)
        if key == "pause":
            raise InputError(
                "loop_control: pause is not supported: the items run one after another in "
                "the host's one process",
                key_at,
                context,
            )
        if key not in LOOP_CONTROL_KEYS:
            raise InputError(
                f"loop_control: unknown key '{key}'{fields.near(str(key), LOOP_CONTROL_KEYS)} "
                f"(it has {', '.join(LOOP_CONTROL_KEYS)})",
                key_at,
                context,
            )
        if key in ("loop_var", "index_var") and not (isinstance(item, str) and item.isidentifier()):
            raise InputError(f"loop_control: {key} must be a variable name, got {item!r}",
                             key_at, context)  # fmt: skip
        if key == "extended" and not isinstance(item, bool):
            raise InputError("loop_control: extended must be true or false", key_at, context)
        setattr(control, key, item)
    if control.index_var is not None and control.index_var == control.loop_var:
        raise InputError("loop_control: index_var and loop_var must differ", control_at, context)
    return control


def registered(results: list[dict]) -> dict:
    """What `register` keeps of a loop, as Ansible does: each item's result under
    `results`, changed or failed when one item is (the host does the same for its
    tasks: vnetctl/hostside/play.py)."""
    return {"results": results, "changed": any(r.get("changed") for r in results),
            "failed": any(r.get("failed") for r in results), "skipped": not results}  # fmt: skip
