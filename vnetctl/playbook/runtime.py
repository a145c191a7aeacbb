"""Results registered on a host, read by later tasks of the same play.

vnetctl plans every task before any host runs, so a task's `when` that reads the
result of an earlier host task (`register: out` on a `command`, or on any module task)
cannot be evaluated on the controller. Such a condition is compiled here into a small
tree that the host's process evaluates before the task (vnetctl/hostside/conditions.py
says what a tree may hold): a registered result's fields (`out.rc`, `out.stdout`,
`out.stdout_lines[0]`), literals, the controller's own variables (resolved here),
comparisons, `in`, `not`/`and`/`or`, the tests `changed`, `failed`, `succeeded`,
`skipped`, `defined` and the filters `length`, `int`, `trim`, `lower`, `bool`. Anything
else in such a condition is refused with file:line, and so is a registered result in a
task's arguments or in a later play (the host's process of the play holds it).
`changed_when` and `failed_when` of a `command` are compiled the same way, reading the
task's own result under its `register` name (or `result`, without one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.meta import find_undeclared_variables

from vnetctl.errors import InputError, Location
from vnetctl.playbook import verbs
from vnetctl.templar import Templar, TemplateFailure, has_templates

TESTS = ("changed", "failed", "succeeded", "success", "skipped", "defined", "undefined")
FILTERS = ("length", "int", "trim", "lower", "bool")
COMPARE = ("eq", "ne", "lt", "gt", "lteq", "gteq", "in", "notin")
OWN_RESULT = "result"  # changed_when/failed_when of a task without `register`
ALLOWED = (
    "fields of a registered result (out.rc, out.stdout), literals, variables, ==, !=, <, >, "
    "in, not, and, or, `is changed|failed|succeeded|skipped|defined` and the filters "
    + ", ".join(FILTERS)
)


def names_in(templar: Templar, source: str) -> set[str]:
    try:
        return find_undeclared_variables(templar.env.parse(source))
    except TemplateSyntaxError:
        return set()  # rendering says what is wrong with it


def names_in_value(templar: Templar, value: Any) -> set[str]:
    if isinstance(value, str):
        return names_in(templar, value) if has_templates(value) else set()
    if isinstance(value, dict):
        return set().union(*(names_in_value(templar, v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(names_in_value(templar, v) for v in value))
    return set()


def expression_names(templar: Templar, expression: str) -> set[str]:
    return names_in(templar, "{{ " + expression + " }}")


class Compiler:
    """Compiles one condition for a host; `registered`: the names registered by host
    tasks earlier in this play; `variables`: the task's variables on the controller."""

    def __init__(self, templar: Templar, registered: set[str], variables: Mapping[str, Any],
                 at: Location, context: str, keyword: str):  # fmt: skip
        self.templar, self.registered, self.variables = templar, registered, variables
        self.at, self.context, self.keyword = at, context, keyword

    def compile(self, expression: str) -> list:
        try:
            template = self.templar.env.parse("{{ (" + expression + ") }}")
        except TemplateSyntaxError as exc:
            self._refuse(f"template syntax error: {exc.message} in {expression!r}")
        node = template.body[0].nodes[0]  # type: ignore[attr-defined]
        return self._node(node, expression)

    def _refuse(self, text: str) -> None:
        raise InputError(f"{self.keyword}: {text}", self.at, self.context)

    def _node(self, node: nodes.Node, source: str) -> list:
        path = self._path(node)
        if path is not None:
            name, keys = path
            if name in self.registered:
                return ["var", name, keys]
            return ["const", self._controller_value(name, keys, source)]
        if isinstance(node, nodes.Const):
            return ["const", node.value]
        if isinstance(node, nodes.List | nodes.Tuple):
            return ["list", [self._node(item, source) for item in node.items]]
        if isinstance(node, nodes.Not):
            return ["not", self._node(node.node, source)]
        if isinstance(node, nodes.And | nodes.Or):
            kind = "and" if isinstance(node, nodes.And) else "or"
            return [kind, self._node(node.left, source), self._node(node.right, source)]
        if isinstance(node, nodes.Compare):
            tree, left = None, self._node(node.expr, source)
            for operand in node.ops:
                if operand.op not in COMPARE:
                    break
                right = self._node(operand.expr, source)
                step = ["cmp", operand.op, left, right]
                tree, left = (step if tree is None else ["and", tree, step]), right
            else:
                return tree  # type: ignore[return-value]
        if isinstance(node, nodes.Test) and node.name in TESTS and not node.args:
            return ["test", node.name, self._node(node.node, source)]
        if isinstance(node, nodes.Filter) and node.name in FILTERS and not node.args:
            return ["filter", node.name, self._node(node.node, source)]  # type: ignore[arg-type]
        self._refuse(
            f"{source!r} reads a result registered on the host, so its host evaluates it, "
            f"with {ALLOWED}"
        )
        return []

    def _path(self, node: nodes.Node) -> tuple[str, list] | None:
        keys: list = []
        while isinstance(node, nodes.Getattr | nodes.Getitem):
            if isinstance(node, nodes.Getattr):
                keys.insert(0, node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str | int):
                keys.insert(0, node.arg.value)
            else:
                return None
            node = node.node
        return (node.name, keys) if isinstance(node, nodes.Name) else None

    def _controller_value(self, name: str, keys: list, source: str) -> Any:
        expression = name + "".join(f"[{k!r}]" for k in keys)
        try:
            return self.templar.evaluate(expression, self.variables)
        except TemplateFailure as exc:
            self._refuse(f"{exc} (in {source!r})")


def compile_all(compiler: Compiler, expressions: list[str]) -> list[list]:
    return [compiler.compile(e) for e in expressions]


def check_not_used(templar: Templar, value: Any, registered: set[str], earlier: dict[str, str],
                   at: Location, context: str, what: str) -> None:  # fmt: skip
    """A task's arguments (or loop) cannot read a result registered on a host: the host
    knows it only when the task runs, after the controller rendered the arguments."""
    if not registered and not earlier:
        return
    used = names_in_value(templar, value)
    for name in sorted(used & registered):
        raise InputError(
            f"{what} reads '{name}', a result registered on the host when the play runs: "
            "only `when` (and a command's changed_when/failed_when, an assert's that) can "
            "read it there; a command's rc, stdout and stderr are in its own result "
            "(--format json)",
            at,
            context,
        )
    for name in sorted(used & set(earlier)):
        raise InputError(
            f"{what} reads '{name}', registered on the host in play '{earlier[name]}': a "
            "registered result lives in its play's process on the host; use it in that play",
            at,
            context,
        )


@dataclass
class HostState:
    """One host's planning across the plays: results its tasks register in this play
    (known only on the host: vnetctl.playbook.runtime), those of earlier plays, and
    whether a verb failed it (nothing more is planned for it)."""

    host: str
    registered: set[str] = field(default_factory=set)
    earlier: dict[str, str] = field(default_factory=dict)  # name -> its play
    failed: bool = False

    def next_play(self, play_name: str) -> None:
        self.earlier.update(dict.fromkeys(self.registered, play_name))
        self.registered = set()


class BlockTracker:
    """A verb that fails a host while planning, inside a block with rescue or always
    (Task.block): the rest of the block is not planned, its rescue and always are,
    and the tasks after it when the rescue plans without failing. The host applies the
    same rules to what fails when it runs (vnetctl/hostside/play.py)."""

    def __init__(self, state: HostState):
        self.state = state
        self.failing: tuple[int, str, bool] | None = None  # the block that failed
        self.rescue_failed = False

    def plans(self, task) -> bool:
        """Whether to plan `task`; sets state.failed when the host stops here."""
        if self.failing is None:
            return True
        block = task.block
        if block is not None and block[0] == self.failing[0]:
            return block[1] == "always" or (block[1] == "rescue" and not self.rescue_failed)
        self.end()
        return not self.state.failed

    def failed(self, task) -> None:
        block = task.block
        if block is None or (self.failing is not None and block[1] == "always"):
            self.state.failed = True
        elif self.failing is None:  # a rescue planned in case the host fails the block
            self.failing = block if block[1] == "block" else None  # counts only then
            self.state.failed = block[1] == "always"
        else:
            self.rescue_failed = True

    def end(self) -> None:
        """Leaving the failed block: the host goes on only when it was rescued."""
        if self.failing is not None:
            self.state.failed = self.rescue_failed or not self.failing[2]
            self.failing, self.rescue_failed = None, False


def split_conditions(fleet, play, task, conditions, variables, state):
    """(conditions the controller evaluates, trees the host evaluates)."""
    if state is None or not (state.registered or state.earlier):
        return conditions, []
    here, there = [], []
    for expression, at in conditions:
        used = expression_names(fleet.templar, expression)
        check_not_used(fleet.templar, "{{ " + expression + " }}", set(),
                               state.earlier, at, play.context(task), "when")  # fmt: skip
        if used & state.registered:
            compiler = Compiler(fleet.templar, state.registered, variables, at,
                                        play.context(task), "when")  # fmt: skip
            there.append(compiler.compile(expression))
        else:
            here.append((expression, at))
    return here, there


def verb_task(fleet, play, task, variables, host_task, state) -> Any:  # a render.HostTask
    host = str(variables["inventory_hostname"])
    context = play.context(task)
    if host_task.host_when and task.module in ("set_fact", "include_vars"):
        raise InputError(
            f"{task.module}: its `when` reads a result registered on the host, known only "
            "when the play runs there; the variables it sets are needed before, to plan the "
            "later tasks",
            task.when_where or task.where,
            context,
        )
    registered = state.registered if state is not None else set()
    that = task.args.get("that") if task.module == "assert" else None
    expressions = [] if that is None else that if isinstance(that, list) else [that]
    used = set().union(*(expression_names(fleet.templar, str(e)) for e in expressions))
    if used & registered:  # the host evaluates it: `that` reads what it registered
        compiler = Compiler(fleet.templar, registered, variables,
                                    task.where_of("that"), context, "assert")  # fmt: skip
        trees = [compiler.compile(str(e)) for e in expressions]
        fail = host_task.args.get("fail_msg") or host_task.args.get("msg") or "Assertion failed"
        result = {"that_on_host": trees, "fail_msg": verbs.redact(verbs._shown(fail)),
                  "success_msg": verbs.redact(verbs._shown(host_task.args.get("success_msg")
                                                           or "All assertions passed")),
                  "shown": not host_task.args.get("quiet")}  # fmt: skip
        return dataclasses.replace(host_task, result=result)
    return verbs.VerbRunner(fleet).run(play, task, variables, host, host_task)


def on_host(fleet, play, task, variables, host_task, state) -> Any:  # a render.HostTask
    """What the host needs to register the task's result and judge a command by it."""
    context = play.context(task)
    own = task.register or OWN_RESULT
    decided = {}
    for key in ("changed_when", "failed_when"):
        expressions = getattr(task, key)
        if expressions:
            compiler = Compiler(fleet.templar, state.registered | {own}, variables,
                                        task.where, context, key)  # fmt: skip
            decided[key] = [compiler.compile(e) for e in expressions]
    if task.register:  # a loop's items: their results under `results`, on the host too
        state.registered.add(task.register)
    if not decided and not task.register:
        return host_task
    return dataclasses.replace(host_task, register=own if decided else task.register,
                               **decided)  # fmt: skip
