"""Task lists: module tasks, loops, and the static task files `import_tasks` and
`include_tasks` bring in, each task checked where it is written.

A task: one module key with its arguments (a mapping, nothing, or Ansible's `key=value`
string), and optionally `name`, `when` (a Jinja expression, or a list of them that must
all hold), `tags` (a string, comma-separated, or a list), `vars` (task variables),
`loop` (a list, or a template giving one) and `loop_control` (`loop_var`, `index_var`,
`label`, `extended`). Anything else is an error at its file:line naming the play and
the task, with what to write instead where vnetctl has an equivalent.

`import_tasks: FILE` and `include_tasks: FILE` insert FILE's tasks (relative to the
file that names it), with `when`, `tags` and `vars`, as in Ansible: an import's tags are
every imported task's, its vars are block variables (below task vars); an include's
tags select the include as a whole and are not its tasks', its vars are include
parameters (above task vars). vnetctl plans every task before any host runs, so both
read a file named literally, and `loop` on them is refused; an import cycle is an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.inventory.sources import VarLayer
from vnetctl.playbook import fields, loops, verbs
from vnetctl.playbook.extra_vars import parse_kv
from vnetctl.playbook.model import Play, Scope, Task
from vnetctl.playbook.validate import check_literal_args
from vnetctl.templar import is_template
from vnetctl.yamlsrc import load_yaml_file, where, where_of

TASK_KEYWORDS = (
    "name", "when", "tags", "vars", "loop", "loop_control", "register", "changed_when",
    "failed_when",
)  # fmt: skip
HOST_CONDITIONS = ("changed_when", "failed_when")  # a command's: evaluated on its host
COMMAND = "host_command"  # modules/host_command.py: `command` (Ansible's name stays free)
ALIASES = {"command": COMMAND, "ansible.builtin.command": COMMAND,
           "ansible.legacy.command": COMMAND}  # fmt: skip
FQCN_PREFIXES = {"ansible.builtin.": "verb", "ansible.legacy.": "verb", "vnetctl.kvm.": "module"}
IMPORT_KEYWORDS = ("name", "when", "tags", "vars")
BLOCK_KEYWORDS = ("block", "rescue", "always", "name", "when", "tags", "vars")
MAX_NESTING = 32  # task files importing task files
TASK_HINTS = {
    "notify": "vnetctl has no handlers: a task that changes reports it",
    "ignore_errors": "a failed task fails its host; the other hosts go on",
    "become": "set ansible_become (or vnetctl_become) for the hosts in the inventory",
    "delegate_to": "every task runs on its own host",
    "run_once": "every task runs on each of its hosts",
    "changed_when": "a module says changed from the state it reads (command has changed_when)",
    "failed_when": "a module says failed from the state it reads (command has failed_when)",
    "check_mode": "use --check for the whole run (a command never runs in check mode; the "
    "tasks whose when reads its result are skipped then)",
    "no_log": "secrets are hidden by name: see vnetctl_secret_vars in the README",
    "until": "a task converges or fails once; there are no retries",
    "shell": "vnetctl runs no shell on a host: `command: {argv: [ip, link]}`",
    "ansible.builtin.shell": "vnetctl runs no shell on a host: `command: {argv: [ip, link]}`",
    "raw": "vnetctl runs no shell on a host: `command: {argv: [ip, link]}`",
    "script": "vnetctl runs no shell on a host: `command: {argv: [ip, link]}`",
    "import_role": "list the role under the play's roles:",
    "include_role": "list the role under the play's roles:",
}


@dataclass(frozen=True)
class Frame:
    """What the tasks of one list inherit from the role and imports around them."""

    scope: Scope = field(default_factory=Scope)
    tags: tuple[str, ...] = ()
    when: tuple[tuple[str, Location], ...] = ()
    include_tags: tuple[tuple[str, ...], ...] = ()
    base: Path = Path(".")  # relative task file names start here
    chain: tuple[Path, ...] = ()  # task files being read, outermost first
    block: tuple[int, str, bool] | None = None  # see Task.block


class TaskReader:
    def __init__(self, play: Play, catalog: Mapping[str, dict]):
        self.play = play
        self.catalog = catalog
        self.blocks = 0  # blocks with rescue/always, numbered in the play

    def read_list(self, data: Any, key: str, at: Location, frame: Frame) -> list[Task]:
        """`data[key]` (a list of tasks) as the tasks it makes, imports resolved."""
        items = data.get(key) if isinstance(data, dict) else data
        items_at = where_of(data, key, at) if isinstance(data, dict) else at
        if items is None:
            return []
        if not isinstance(items, list):
            raise InputError(f"{key} must be a list", items_at, self.play.context())
        tasks: list[Task] = []
        for i, item in enumerate(items):
            item_at = where_of(items, i, items_at)
            if isinstance(item, dict) and ({"import_tasks", "include_tasks"} & set(item)):
                tasks += self._import(item, item_at, frame)
            elif isinstance(item, dict) and "block" in item:
                tasks += self._block(item, item_at, frame)
            else:
                tasks.append(self.task(item, item_at, frame))
        return tasks

    # ---- import_tasks / include_tasks ---------------------------------------------------

    def _import(self, data: dict, at: Location, frame: Frame) -> list[Task]:
        at = where(data, at)
        keyword = "import_tasks" if "import_tasks" in data else "include_tasks"
        context = self.play.context()
        for key in data:
            if key not in (keyword, *IMPORT_KEYWORDS):
                hint = (
                    "loop over the tasks inside the file instead: vnetctl reads task files "
                    "once, before any host"
                    if key in ("loop", "loop_control") or str(key).startswith("with_")
                    else f"{keyword} has {', '.join(IMPORT_KEYWORDS)}"
                )
                raise InputError(f"{keyword}: unknown keyword '{key}': {hint}",
                                 where_of(data, key, at), context)  # fmt: skip
        value = data[keyword]
        if isinstance(value, dict) and set(value) == {"file"}:
            value = value["file"]
        name = fields.file_name(value, keyword, where_of(data, keyword, at), context)
        path = fields.resolve(name, frame.base)
        if not path.is_file():
            raise InputError(f"{keyword}: {path}: no such file", where_of(data, keyword, at),
                             context)  # fmt: skip
        key = path.resolve()
        if key in frame.chain:
            cycle = " -> ".join(p.name for p in (*frame.chain[frame.chain.index(key) :], key))
            raise InputError(f"{keyword}: import cycle: {cycle}", where_of(data, keyword, at),
                             context)  # fmt: skip
        if len(frame.chain) >= MAX_NESTING:
            raise InputError(f"{keyword}: task files nest more than {MAX_NESTING} deep", at,
                             context)  # fmt: skip
        own_tags = fields.tags(data.get("tags"), where_of(data, "tags", at), context)
        when_at = where_of(data, "when", at)
        when = tuple((w, when_at) for w in fields.when(data.get("when"), when_at, context))
        layer = fields.variables(data, "vars", at, context)
        if keyword == "import_tasks":  # static: tags inherited, vars at block level
            inner = dataclasses.replace(
                frame, tags=(*frame.tags, *own_tags), when=(*frame.when, *when),
                scope=_with(frame.scope, block=layer),
            )  # fmt: skip
        else:  # the include is selected (or not) as a whole; vars are include parameters
            inner = dataclasses.replace(
                frame, when=(*frame.when, *when), scope=_with(frame.scope, include=layer),
                include_tags=(*frame.include_tags, (*frame.tags, *own_tags)),
            )  # fmt: skip
        inner = dataclasses.replace(inner, base=path.parent, chain=(*frame.chain, key))
        loaded = load_yaml_file(path)
        if loaded is None:
            return []
        if not isinstance(loaded, list):
            raise InputError(
                f"a task file is a list of tasks, got a {type_name(loaded)}",
                where(loaded, Location(str(path), 1)),
                context,
            )
        return self.read_list(loaded, "", where(loaded, Location(str(path), 1)), inner)

    # ---- block / rescue / always ----------------------------------------------------------

    def _block(self, data: dict, at: Location, frame: Frame) -> list[Task]:
        """A block's `when`, `tags` and `vars` go to each of its tasks (rescue and always
        included), as an import's do; with rescue or always, its host runs them by
        Ansible's rules (vnetctl/hostside/play.py): a failed task of the block (rolled
        back whole) leaves the block, the rescue runs, then always; a rescue that ends
        well clears the failure."""
        at = where(data, at)
        context = self.play.context()
        for key in data:
            if key not in BLOCK_KEYWORDS:
                hint = TASK_HINTS.get(key, f"a block has {', '.join(BLOCK_KEYWORDS)}")
                raise InputError(f"block: unknown keyword '{key}'"
                                 f"{fields.near(str(key), BLOCK_KEYWORDS)}: {hint}",
                                 where_of(data, key, at), context)  # fmt: skip
        own_tags = fields.tags(data.get("tags"), where_of(data, "tags", at), context)
        when_at = where_of(data, "when", at)
        when = tuple((w, when_at) for w in fields.when(data.get("when"), when_at, context))
        inner = dataclasses.replace(
            frame, tags=(*frame.tags, *own_tags), when=(*frame.when, *when),
            scope=_with(frame.scope, block=fields.variables(data, "vars", at, context)),
        )  # fmt: skip
        handled = data.get("rescue") is not None or data.get("always") is not None
        if not handled:
            return self.read_list(data, "block", at, inner)
        if frame.block is not None:
            raise InputError("block: a block with rescue or always inside another one is not "
                             "supported: put the inner one in a play of its own, or leave "
                             "its rescue/always to the outer block", at, context)  # fmt: skip
        self.blocks += 1
        tasks = []
        rescued = data.get("rescue") is not None
        for part in ("block", "rescue", "always"):
            marked = dataclasses.replace(inner, block=(self.blocks, part, rescued))
            tasks += self.read_list(data, part, at, marked)
        return tasks

    # ---- one module task ----------------------------------------------------------------

    def task(self, data: Any, at: Location, frame: Frame) -> Task:
        play = self.play
        if not isinstance(data, dict):
            raise InputError(
                f"a task must be a mapping (`- name: ...` then one module), got {data!r}",
                at,
                play.context(),
            )
        at = where(data, at)
        name = data.get("name")
        if name is not None and not isinstance(name, str | int | float):
            raise InputError("task name must be a string", where_of(data, "name", at),
                             play.context())  # fmt: skip
        others = [k for k in data if k not in TASK_KEYWORDS]
        modules = [k for k in others if self.module_name(k) is not None]
        strays = [k for k in others if k not in modules]
        written = modules[0] if modules else str(strays[0]) if strays else ""
        module = self.module_name(written) or written
        task = Task(index=-1, module=module, args={}, name=str(name) if name is not None else None,
                    scope=frame.scope, where=at, block=frame.block)  # fmt: skip
        if task.name is None and written != module:  # named as written, as Ansible does
            task.name = "command" if written in ALIASES else written
        context = play.context(task) if task.display_name else play.context()
        self._check_keys(data, at, task, modules, strays, context)
        module_at = where_of(data, written, at)
        task.args = _module_args(data[written], module_at, context, module)
        task.arg_where = {k: where_of(task.args, k, module_at) for k in task.args}
        task.when_where = where_of(data, "when", at)
        task.when = fields.when(data.get("when"), task.when_where, context)
        task.outer_when = list(frame.when)
        own_tags = fields.tags(data.get("tags"), where_of(data, "tags", at), context)
        task.tags = list(dict.fromkeys([*own_tags, *frame.tags]))
        task.include_tags = [list(t) for t in frame.include_tags]
        task.vars = fields.variables(data, "vars", at, context)
        if "loop" in data:
            self._loop(data, at, task, context)
        elif "loop_control" in data:
            raise InputError("loop_control without loop", where_of(data, "loop_control", at),
                             context)  # fmt: skip
        self._keywords(data, at, task, context)
        spec = self.spec(module)
        if spec is None:
            verbs.check_set_fact(task.args, module_at, context)
        else:
            shown = "command" if module == COMMAND else module
            check_literal_args(shown, spec, task.args, task.where_of, context)
        if module == "include_vars":
            role = frame.scope.role
            verbs.load_include_vars(task, frame.base, role.path if role else None, context)
        return task

    def module_name(self, key: Any) -> str | None:
        """The module or verb a task key names (FQCNs and `command` included), or None."""
        if not isinstance(key, str):
            return None
        if key in ALIASES:
            return ALIASES[key]
        for prefix, kind in FQCN_PREFIXES.items():
            if key.startswith(prefix):
                short = key[len(prefix) :]
                found = verbs.is_verb(short) if kind == "verb" else short in self.catalog
                return short if found else None
        return key if verbs.is_verb(key) or (key in self.catalog and key != COMMAND) else None

    def spec(self, module: str) -> dict | None:
        return verbs.SPECS[module] if verbs.is_verb(module) else self.catalog[module]

    def _keywords(self, data: dict, at: Location, task: Task, context: str) -> None:
        if "register" in data:
            name = data["register"]
            if not (isinstance(name, str) and name.isidentifier()):
                raise InputError(f"register: a variable name, got {name!r}",
                                 where_of(data, "register", at), context)  # fmt: skip
            task.register = name
        for key in HOST_CONDITIONS:
            if key not in data:
                continue
            key_at = where_of(data, key, at)
            if task.module != COMMAND:
                raise InputError(f"unknown task keyword '{key}': {TASK_HINTS[key]}", key_at,
                                 context)  # fmt: skip
            setattr(task, key, fields.when(data[key], key_at, context))

    def _check_keys(self, data, at, task, modules, strays, context) -> None:
        names = sorted({*self.catalog, *verbs.SPECS, "command"} - {COMMAND})
        known = ", ".join(names)
        if len(modules) > 1:
            raise InputError(
                f"one task runs one module, this one names {len(modules)}: "
                f"{', '.join(modules)} (write one task per module)",
                where_of(data, modules[1], at),
                context,
            )
        if modules and strays:
            word = str(strays[0])
            hint = TASK_HINTS.get(word)
            if word.startswith("with_"):
                hint = "write `loop:` over a list (with_* lookups are not supported)"
            hint = hint or f"a task has one module and optionally {', '.join(TASK_KEYWORDS)}"
            raise InputError(
                f"unknown task keyword '{word}'"
                f"{fields.near(word, [*TASK_KEYWORDS, *self.catalog])}: {hint}",
                where_of(data, strays[0], at),
                context,
            )
        if not modules:
            if not strays:
                raise InputError(f"task names no module (known: {known})", at, context)
            word = str(strays[0])
            if word in TASK_HINTS:  # an Ansible keyword vnetctl has another way for
                raise InputError(f"'{word}' is not supported: {TASK_HINTS[word]}", at, context)
            raise InputError(
                f"unknown module '{word}'{fields.near(word, names)} (known: {known})",
                at,
                context,
            )

    def _loop(self, data: dict, at: Location, task: Task, context: str) -> None:
        task.loop_where = where_of(data, "loop", at)
        loop = data["loop"]
        if not isinstance(loop, list) and not is_template(loop):
            raise InputError(
                f'loop: expected a list, or a template that gives one (loop: "{{{{ bridges '
                f'}}}}"), got {type_name(loop)} {loop!r}',
                task.loop_where,
                context,
            )
        spec = self.spec(task.module) or {}
        fleet_wide = [k for k, rule in spec.items() if rule.get("controller")]
        if fleet_wide:
            raise InputError(
                f"loop: {task.module} is planned across the fleet (its {fleet_wide[0]}): "
                "write one task per item",
                task.loop_where,
                context,
            )
        task.loop = loop
        task.loop_control = loops.parse_loop_control(data, at, context)


def _module_args(value: Any, at: Location, context: str, module: str) -> dict[str, Any]:
    if value is None:
        return {}
    if module == COMMAND and (not isinstance(value, dict) or "cmd" in value):
        value = value.get("cmd") if isinstance(value, dict) else value
        raise InputError(
            "command takes its argv as a list, and no shell: `command: {argv: [ip, -br, "
            f"link]}}` (got {type_name(value)} {value!r})",
            at,
            context,
        )
    if module == "include_vars" and isinstance(value, str) and "=" not in value:
        return {"file": value}
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


def _with(scope: Scope, block: VarLayer | None = None, include: VarLayer | None = None) -> Scope:
    """`scope` with one more layer of block variables or include parameters."""
    if block is not None and block.values:
        return dataclasses.replace(scope, block=(*scope.block, block))
    if include is not None and include.values:
        return dataclasses.replace(scope, include=(*scope.include, include))
    return scope
