"""From plays and an inventory to the exact tasks each host runs: rendered and validated.

For each play, host (selected by the play's `hosts` and --limit) and task (kept by the
tags), `when` is evaluated and the task's arguments are rendered with the host's
variables (vnetctl.playbook.variables: their precedence), once per loop item for a task
with `loop` (vnetctl.playbook.loops), then checked against the module's spec. Every
problem of every host is found before anything is returned: nothing touches a host
when any input is bad.

Tags keep tasks as in Ansible (vnetctl.playbook.tags).

Secrets (vnetctl.secrets) are registered as variables are rendered; every error raised
here has them replaced by `***`. Each planning starts a new run's registry.

`when` must give true or false, as Ansible 2.19 requires: `when: uplink` where uplink is
a string is an error (write `uplink is defined`, or `flag | bool` for "yes"/"no" text).
The conditions of a role entry or an import around a task are evaluated first, before
its loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vnetctl import secrets
from vnetctl.errors import InputError, Location
from vnetctl.inventory.model import Inventory
from vnetctl.playbook import loops, runtime, verbs
from vnetctl.playbook.model import Play, Task
from vnetctl.playbook.tags import check_tags, task_kept
from vnetctl.playbook.validate import validate_args
from vnetctl.playbook.variables import Fleet
from vnetctl.secrets import redact
from vnetctl.templar import OMIT, LazyVars, TemplateFailure

MAX_SHOWN = 10  # problems listed in one error; the rest are counted


@dataclass
class HostTask:
    index: int  # its key in the host's stream: the task's position (see playbook.loops)
    name: str  # the task's name, or its module's; a loop item's says `(item=LABEL)`
    module: str
    args: dict[str, Any]  # rendered and validated
    where: Location
    item: int | None = None  # a loop item: its position in the loop (from 0)
    # a verb the controller ran (debug, assert, ...): its result, which the host's process
    # reports in its place in the play (vnetctl.playbook.verbs)
    result: dict[str, Any] | None = None
    # on the host, from the results registered before it: skip unless this holds, and
    # what the host needs to register, decide failed/changed (vnetctl.playbook.runtime)
    host_when: Any = None
    register: str | None = None
    changed_when: Any = None
    failed_when: Any = None
    block: tuple[int, str, bool] | None = None  # see Task.block
    loop_of: int | None = None  # an item of a loop with register: the loop's task index


@dataclass
class PlayPlan:
    play: Play
    hosts: list[str]  # selected, inventory order
    tasks: dict[str, list[HostTask]]  # per host; tasks skipped by when/tags left out
    # per host, the tasks and items a `when` left out: (name, the condition that is false)
    skipped: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # per host, the command of each `command` health gate, rendered (vnetctl.fleet.gates)
    gate_commands: dict[str, list[str]] = field(default_factory=dict)


class _Problems:
    """Errors found while planning, grouped: the same error on many hosts is one line."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str, str], tuple[InputError, list[str]]] = {}

    def add(self, error: InputError, host: str | None = None) -> None:
        key = (str(error.where), error.context, error.message)
        _, hosts = self._found.setdefault(key, (error, []))
        if host is not None:
            hosts.append(host)

    def raise_if_any(self) -> None:
        errors = [_redacted(self._with_hosts(e, hosts)) for e, hosts in self._found.values()]
        if not errors:
            return
        if len(errors) == 1:
            raise errors[0]
        lines = [f"  {e}" for e in errors[:MAX_SHOWN]]
        if len(errors) > MAX_SHOWN:
            lines.append(f"  ... and {len(errors) - MAX_SHOWN} more")
        summary = InputError(f"{len(errors)} problems; nothing was run:\n" + "\n".join(lines))
        summary.problems = errors  # type: ignore[attr-defined]
        raise summary

    @staticmethod
    def _with_hosts(error: InputError, hosts: list[str]) -> InputError:
        if not hosts:
            return error
        shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
        label = "host" if len(hosts) == 1 else "hosts"
        return InputError(f"{label} {shown}: {error.message}", error.where, error.context)


def _redacted(error: InputError) -> InputError:
    """The error with secret values hidden (a value that failed validation is quoted)."""
    return InputError(redact(error.message), error.where, redact(error.context))


def _drop_omitted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_omitted(v) for k, v in value.items() if v != OMIT}
    if isinstance(value, list):
        return [_drop_omitted(v) for v in value if v != OMIT]
    return value


def _holds(fleet: Fleet, play: Play, task: Task, conditions, variables: LazyVars,
           name: str = "") -> bool:  # fmt: skip
    """Whether every condition holds; the first that does not is noted as the reason
    `name` (default: the task's) is skipped on this host (PlayPlan.skipped)."""
    for expression, at in conditions:
        try:
            result = fleet.templar.evaluate(expression, variables)
        except TemplateFailure as exc:
            raise InputError(f"when: {exc}", at, play.context(task)) from None
        if not isinstance(result, bool):
            raise InputError(
                f"when: {expression!r} gave {type(result).__name__} {result!r}, not true or "
                f"false (write e.g. `{expression} | bool`)",
                at,
                play.context(task),
            )
        if not result:
            host = variables["inventory_hostname"]
            fleet.skipped.setdefault(host, []).append((name or task.display_name, expression))
            return False
    return True


def render_task(
    fleet: Fleet,
    play: Play,
    task: Task,
    variables: LazyVars,
    catalog: Mapping[str, dict],
    conditions: list | None = None,
    name: str = "",
    state: runtime.HostState | None = None,
) -> HostTask | None:
    """The task as this host runs it, or None when a `when` does not hold (all of the
    task's, or `conditions`; `name`: what the skip is noted as); a condition on a
    registered result goes with it, for its host to evaluate."""
    conditions = task.conditions() if conditions is None else conditions
    here, there = runtime.split_conditions(fleet, play, task, conditions, variables, state)
    if not _holds(fleet, play, task, here, variables, name):
        return None
    context = play.context(task)
    registered = state.registered if state is not None else set()
    earlier = state.earlier if state is not None else {}
    unrendered = verbs.NOT_RENDERED.get(task.module, ())
    if task.module == "debug" and isinstance(task.args.get("var"), str):  # a bare expression
        runtime.check_not_used(fleet.templar, "{{ " + task.args["var"] + " }}", registered,
                               earlier, task.where_of("var"), context, "debug var")  # fmt: skip
    args: dict[str, Any] = {}
    for key, value in task.args.items():
        runtime.check_not_used(fleet.templar, value, registered, earlier, task.where_of(key),
                               context, f"argument '{key}'")  # fmt: skip
        try:
            rendered = value if key in unrendered else fleet.templar.render(value, variables)
        except TemplateFailure as exc:
            raise InputError(f"argument '{key}': {exc}", task.where_of(key), context) from None
        if rendered != OMIT:
            args[key] = _drop_omitted(rendered)
    spec = verbs.SPECS[task.module] if verbs.is_verb(task.module) else catalog[task.module]
    shown = "command" if task.module == "host_command" else task.module
    checked = validate_args(shown, spec, args, task.where_of, context) if spec else args
    host_task = HostTask(task.index, task.display_name, task.module, checked, task.where,
                         host_when=there or None, block=task.block)  # fmt: skip
    if verbs.is_verb(task.module):
        return runtime.verb_task(fleet, play, task, variables, host_task, state)
    if state is not None:
        host_task = runtime.on_host(fleet, play, task, variables, host_task, state)
    return host_task


def render_items(
    fleet: Fleet,
    play: Play,
    task: Task,
    host: str,
    catalog: Mapping[str, dict],
    state: runtime.HostState | None = None,
) -> list[HostTask]:
    """A task with `loop`: one HostTask per item whose `when` holds."""
    variables = fleet.task_vars(play, task, host)
    if not _holds(fleet, play, task, task.outer_when, variables):
        return []
    items = loops.loop_items(fleet, play, task, variables)
    fixed = set(fleet.fixed(play, task, host))
    own = [(w, task.when_where or task.where) for w in task.when]
    size = max(t.index for t in play.tasks) + 1
    out, names = [], []
    for k, bound in enumerate(loops.bindings(play, task, items, fixed)):
        item_vars = fleet.item_vars(play, task, host, bound)
        try:  # a label may be defined only for the items `when` keeps
            label = loops.label(fleet, play, task, item_vars, items[k])
        except InputError:
            label = None
        shown = f"{task.display_name} (item={label if label is not None else k})"
        rendered = render_task(fleet, play, task, item_vars, catalog, conditions=own, name=shown,
                               state=state)  # fmt: skip
        if rendered is None:
            continue
        if label is None:
            label = loops.label(fleet, play, task, item_vars, items[k])  # raises
        out.append(dataclasses.replace(
            rendered, index=loops.item_index(task, k, size), item=k, name=shown,
            loop_of=task.index if task.register else None,
        ))  # fmt: skip
        if rendered.result is None and task.module != "host_command":  # no object: actions
            names.append((label, _identity(catalog, task.module, rendered.args)))
    loops.check_distinct(play, task, names)
    if task.register and verbs.is_verb(task.module):  # as Ansible: the items' results
        fleet.set_facts(host, {task.register: loops.registered([t.result for t in out])},
                        task.where)  # fmt: skip
    return out


def _failed_here(task: HostTask) -> bool:
    """A verb that failed its host as planned (not one its host decides)."""
    return bool(task.result and task.result.get("failed") and not task.host_when)


def _identity(catalog: Mapping[str, dict], module: str, args: dict) -> Any:
    """What an item declares: its `name`, or the module's own name for it (a route's
    destination, table and metric); None for a module that declares no object."""
    named = getattr(catalog, "resource_name", None)
    return named(module, args) if named is not None else args.get("name")


def _render_commands(fleet: Fleet, play: Play, host: str) -> list[str]:
    commands = []
    for gate in (g for g in play.health_gates if g.kind == "command"):
        try:
            command = fleet.templar.render(gate.command, fleet.task_vars(play, None, host))
        except TemplateFailure as exc:
            raise InputError(f"health gate command: {exc}", gate.where, play.context()) from None
        commands.append(str(command))
    return commands


def plan_playbook(
    plays: list[Play],
    inventory: Inventory,
    catalog: Mapping[str, dict],
    *,
    limit: str | None = None,
    tags: list[str] | None = None,
    skip_tags: list[str] | None = None,
    extra_vars: dict | None = None,
) -> list[PlayPlan]:
    """Every play's hosts and, per host, its rendered and validated tasks.

    Raises InputError (one problem, or a summary of all of them, each with file:line)."""
    secrets.new_run()
    problems = _Problems()
    check_tags(plays, tags, skip_tags)
    if limit:
        inventory.select("all", limit)  # a bad --limit is one error, not one per play
    fleet = Fleet(inventory, extra_vars or {})
    only = set(tags) if tags else None
    skip = set(skip_tags) if skip_tags else None
    states: dict[str, runtime.HostState] = {}
    plans = []
    for play in plays:
        try:
            hosts = [
                h.name
                for h in inventory.select(
                    play.hosts, limit, where=play.hosts_where, context=play.context()
                )
            ]
        except InputError as exc:
            problems.add(exc)
            continue
        kept = [t for t in play.tasks if task_kept(play, t, only, skip)]
        plan = PlayPlan(play=play, hosts=hosts, tasks={})
        for host in hosts:
            state = states.setdefault(host, runtime.HostState(host))
            host_tasks: list[HostTask] = []
            blocks = runtime.BlockTracker(state)
            for task in kept if not state.failed else ():
                if not blocks.plans(task):
                    if state.failed:
                        break
                    continue
                try:
                    if task.loop is not None:
                        found = render_items(fleet, play, task, host, catalog, state)
                    else:
                        variables = fleet.task_vars(play, task, host)
                        found = [render_task(fleet, play, task, variables, catalog, state=state)]
                except InputError as exc:
                    problems.add(exc, host)
                    continue
                host_tasks += [t for t in found if t is not None]
                if any(_failed_here(t) for t in found if t is not None):
                    blocks.failed(task)  # as in Ansible: nothing more for this host, but
                    if state.failed:  # the rescue and always of a block around it
                        break
            blocks.end()
            state.next_play(play.display_name)
            plan.tasks[host] = host_tasks
            plan.skipped[host] = fleet.skipped.pop(host, [])
            try:
                plan.gate_commands[host] = _render_commands(fleet, play, host)
            except InputError as exc:
                problems.add(exc, host)
        plans.append(plan)
    problems.raise_if_any()
    return plans


def render_for_hosts(
    play: Play,
    task_index: int,
    hosts: list[str],
    inventory: Inventory,
    catalog: Mapping[str, dict],
    extra_vars: dict | None = None,
) -> dict[str, HostTask | None]:
    """One task rendered for hosts outside the run (e.g. mesh members not in --limit);
    problems are raised as plan_playbook raises them: every host's, named, redacted."""
    fleet = Fleet(inventory, extra_vars or {})
    task = next(t for t in play.tasks if t.index == task_index)
    problems = _Problems()
    rendered: dict[str, HostTask | None] = {}
    for host in hosts:
        try:
            variables = fleet.task_vars(play, task, host)
            rendered[host] = render_task(fleet, play, task, variables, catalog)
        except InputError as exc:
            problems.add(exc, host)
    problems.raise_if_any()
    return rendered


def cut(plans: Sequence[PlayPlan], holds: Callable[[str], bool]) -> list[PlayPlan]:
    """The plans with only the hosts `holds` keeps (a shard's, a worker process's)."""
    out = []
    for plan in plans:
        hosts = [h for h in plan.hosts if holds(h)]
        out.append(
            dataclasses.replace(
                plan,
                hosts=hosts,
                tasks={h: plan.tasks[h] for h in hosts if h in plan.tasks},
                skipped={h: plan.skipped[h] for h in hosts if h in plan.skipped},
                gate_commands={h: plan.gate_commands[h] for h in hosts if h in plan.gate_commands},
            )
        )
    return out
