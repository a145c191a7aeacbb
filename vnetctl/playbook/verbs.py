"""The checking verbs: debug, assert, fail, set_fact and include_vars, run by the
controller as it plans each host's tasks, in order (Ansible runs them on the controller
too: they reach no host).

A verb's result is reported in its place in the host's play: the host's process says
it when the tasks before it have run (vnetctl/hostside/play.py), so console lines,
the recap, `--format json`, `--check` and drift see it as any task. A failed `assert`
or `fail` fails its host there: the tasks before it run, none after it (on that host,
in this play and the later ones), the other hosts go on; the tasks after it are not
even rendered for that host. `set_fact` and `include_vars` give the host variables for
its later tasks, in this play and the later ones, at Ansible's levels (above task vars:
include_vars, then set_fact and registered results; below include params and `-e`).
An `assert` whose `that` reads a result registered on the host is evaluated there
(vnetctl.playbook.runtime).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.inventory.sources import VarLayer
from vnetctl.playbook import fields
from vnetctl.secrets import redact
from vnetctl.templar import TemplateFailure
from vnetctl.yamlsrc import load_vars_file

# Ansible-style specs, checked by the one rulebook (vnet_params) like any module's;
# set_fact takes variable names instead (its own check below)
SPECS: dict[str, dict | None] = {
    "debug": {"msg": {"type": "raw"}, "var": {"type": "str"}},
    "assert": {
        "that": {"type": "raw", "required": True},
        "fail_msg": {"type": "raw"},
        "msg": {"type": "raw"},
        "success_msg": {"type": "raw"},
        "quiet": {"type": "bool", "default": False},
    },
    "fail": {"msg": {"type": "raw"}},
    "set_fact": None,
    "include_vars": {"file": {"type": "str", "required": True}, "name": {"type": "str"}},
}
NOT_RENDERED = {"assert": ("that",), "debug": ("var",), "include_vars": ("file", "name")}
DEFAULT_FAIL = "Failed as requested from task"


def is_verb(module: str) -> bool:
    return module in SPECS


def check_set_fact(args: dict, at: Location, context: str) -> None:
    values = {k: v for k, v in args.items() if k != "cacheable"}
    if not values:
        raise InputError("set_fact: name at least one variable (set_fact: {x: 1})", at, context)
    fields.check_names(values, at, context)


def load_include_vars(task, base: Path, role_path: str | None, context: str) -> None:
    """include_vars reads its file when the playbook is loaded, as vars_files does (the
    one loader of variable files), from the role's vars/ in a role, else beside the
    task's file (or its vars/): a name written out, inside that directory."""
    at = task.where_of("file")
    name = fields.file_name(task.args.get("file"), "include_vars", at, context)
    bases = [Path(role_path) / "vars"] if role_path else []
    bases += [base / "vars", base]
    path = next((fields.resolve(name, b) for b in bases if fields.resolve(name, b).is_file()),
                None)  # fmt: skip
    if path is None:
        raise InputError(f"include_vars: {name}: no such file (looked in "
                         f"{', '.join(str(b) for b in bases)})", at, context)  # fmt: skip
    fields.inside(name, path, path.parent if Path(name).name == name else base,
                  "include_vars", at, context)  # fmt: skip
    data = load_vars_file(path, "include_vars", context) or {}
    wrap = task.args.get("name")
    if wrap is not None:
        fields.check_names({wrap: None}, task.where_of("name"), context)
        data = {wrap: data}
    layer = VarLayer()
    layer.update(data, Location(str(path), 1), path.name)
    task.data = (str(path), layer)


class VerbRunner:
    """Runs the verbs of one planning (vnetctl.playbook.render calls it per host task)."""

    def __init__(self, fleet):
        self.fleet = fleet

    def run(self, play, task, variables, host: str, rendered) -> Any:
        """The HostTask with its result; the host's variables updated (set_fact,
        include_vars, register)."""
        context = play.context(task)
        verb = getattr(self, "_" + task.module)
        result = verb(task, variables, rendered.args, host, context)
        result.setdefault("changed", False)
        result.setdefault("failed", False)
        result["verb"] = True  # the controller ran it: no resource, never drift
        if task.register and task.loop is None:  # a loop's: all its items (render_items)
            self.fleet.set_facts(host, {task.register: dict(result)}, task.where)
        result["msg"] = redact(result.get("msg", ""))
        return replace(rendered, result=result)

    def _render(self, task, key: str, value: Any, variables) -> Any:
        try:
            return self.fleet.templar.render(value, variables)
        except TemplateFailure as exc:
            raise InputError(f"argument '{key}': {exc}", task.where_of(key),
                             self._context(task)) from None  # fmt: skip

    @staticmethod
    def _context(task) -> str:
        return f"task '{task.display_name}'"

    def _debug(self, task, variables, args, host, context) -> dict:
        if "var" in args and "msg" in args:
            raise InputError("debug: give msg or var, not both", task.where, context)
        if "var" in args:
            name = str(args["var"])
            try:
                value = self.fleet.templar.evaluate(name, variables)
            except TemplateFailure as exc:  # as ansible-core 2.19 shows it
                value = f"<< {exc} >>"
            return {"msg": f"{name}: {_shown(value)}", "shown": True}
        value = args.get("msg", "Hello world!")
        return {"msg": _shown(value), "shown": True}

    def _fail(self, task, variables, args, host, context) -> dict:
        return {"failed": True, "msg": _shown(args.get("msg") or DEFAULT_FAIL)}

    def _assert(self, task, variables, args, host, context) -> dict:
        that = args["that"] if isinstance(args["that"], list) else [args["that"]]
        at = task.where_of("that")
        for expression in that:
            if not isinstance(expression, str | bool) or (
                isinstance(expression, str) and not expression.strip()
            ):
                raise InputError(f"assert: each of that is a Jinja expression, got "
                                 f"{expression!r}", at, context)  # fmt: skip
            fields.when(expression, at, context)  # not a {{ template }}
            try:
                result = self.fleet.templar.evaluate(str(expression), variables)
            except TemplateFailure as exc:
                raise InputError(f"assert: {exc}", at, context) from None
            if not isinstance(result, bool):
                raise InputError(f"assert: {expression!r} gave {type(result).__name__} "
                                 f"{result!r}, not true or false (write e.g. `{expression} | "
                                 "bool`)", at, context)  # fmt: skip
            if not result:
                text = args.get("fail_msg") or args.get("msg") or "Assertion failed"
                return {"failed": True, "msg": _shown(text), "assertion": str(expression),
                        "evaluated_to": False}  # fmt: skip
        text = args.get("success_msg") or "All assertions passed"
        return {"msg": _shown(text), "shown": not args.get("quiet")}

    def _set_fact(self, task, variables, args, host, context) -> dict:
        values = {k: v for k, v in args.items() if k != "cacheable"}
        self.fleet.set_facts(host, values, task.where)
        return {"msg": "set: " + ", ".join(values)}

    def _include_vars(self, task, variables, args, host, context) -> dict:
        path, layer = task.data
        self.fleet.include_vars(host, layer)
        return {"msg": f"included {path}: " + ", ".join(layer.values)}


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)
