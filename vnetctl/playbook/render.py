"""From plays and an inventory to the exact tasks each host runs: rendered and validated.

For each play, host (selected by the play's `hosts` and --limit) and task (kept by the
tags), `when` is evaluated and the task's arguments are rendered with the host's
variables, then checked against the module's spec. Every problem of every host is found
before anything is returned: nothing touches a host when any input is bad.

The variables of a host in a play, lowest to highest precedence: the host's inventory
variables (see vnetctl.inventory.loader), the play's `vars`, the extra vars (`-e`); then
the magic variables, which nothing overrides: `inventory_hostname`,
`inventory_hostname_short`, `group_names`, `groups` (group -> host names, all of the
inventory, not only --limit), `hostvars` (host -> its inventory and extra variables),
`inventory_file`, `inventory_dir`, `playbook_dir`, `omit`.

Tags, as in Ansible: a task's tags are its own plus its play's; an untagged task has the
tag `untagged`. `--tags` keeps tasks sharing a tag with it, and tasks tagged `always`;
`all` (the default) keeps all but tasks tagged `never`, `tagged` keeps tagged tasks.
`--skip-tags` then drops tasks sharing a tag with it (`always` tasks only when `always`
itself is skipped). Unlike Ansible, a tag in --tags or --skip-tags that no play or task
has is an error: a typo would otherwise run nothing, or skip nothing.

Secrets (vnetctl.secrets) are registered as variables are rendered; every error raised
here has them replaced by `***`. Each planning starts a new run's registry.

`when` must give true or false, as Ansible 2.19 requires: `when: uplink` where uplink is
a string is an error (write `uplink is defined`, or `flag | bool` for "yes"/"no" text).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnetctl import secrets
from vnetctl.errors import InputError, Location
from vnetctl.inventory.model import Inventory
from vnetctl.playbook.model import Play, Task
from vnetctl.playbook.validate import validate_args
from vnetctl.secrets import redact
from vnetctl.templar import OMIT, LazyVars, Templar, TemplateFailure

MAX_SHOWN = 10  # problems listed in one error; the rest are counted
SPECIAL_TAGS = frozenset({"all", "always", "never", "tagged", "untagged"})


@dataclass
class HostTask:
    index: int  # position in the play's task list
    name: str  # the task's name, or its module's
    module: str
    args: dict[str, Any]  # rendered and validated
    where: Location


@dataclass
class PlayPlan:
    play: Play
    hosts: list[str]  # selected, inventory order
    tasks: dict[str, list[HostTask]]  # per host; tasks skipped by when/tags left out


def should_run(tags: set[str], only: set[str] | None = None, skip: set[str] | None = None) -> bool:
    """Ansible's tag rules (its `Taggable.evaluate_tags`)."""
    tags = tags or {"untagged"}
    only = only or {"all"}
    run = (
        "always" in tags
        or ("all" in only and "never" not in tags)
        or not tags.isdisjoint(only)
        or ("tagged" in only and tags != {"untagged"} and "never" not in tags)
    )
    if run and skip:
        if "all" in skip:
            run = "always" in tags and "always" not in skip
        elif not tags.isdisjoint(skip) or ("tagged" in skip and tags != {"untagged"}):
            run = False
    return run


def check_tags(plays: list[Play], tags: list[str] | None, skip_tags: list[str] | None) -> None:
    """Every tag asked for exists in the playbook (or is one of Ansible's special tags)."""
    known = {t for p in plays for t in [*p.tags, *(t for task in p.tasks for t in task.tags)]}
    for option, asked in (("--tags", tags or []), ("--skip-tags", skip_tags or [])):
        for tag in asked:
            if tag not in known and tag not in SPECIAL_TAGS:
                close = difflib.get_close_matches(tag, sorted(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                listed = ", ".join(sorted(known)) or "none"
                raise InputError(
                    f"unknown tag '{tag}'{hint}; tags in the playbook: {listed}", None, option
                )


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


class _HostVarsView(Mapping[str, Any]):
    """`hostvars`: host name -> its variables, each host's rendered only when used."""

    def __init__(self, fleet: _Fleet):
        self._fleet = fleet

    def __getitem__(self, host: str) -> LazyVars:
        if host not in self._fleet.inventory.hosts:
            raise KeyError(host)
        return self._fleet.host_vars(host)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fleet.inventory.hosts)

    def __len__(self) -> int:
        return len(self._fleet.inventory.hosts)


class _Fleet:
    """What every host's variables share in one planning run."""

    def __init__(self, inventory: Inventory, extra_vars: Mapping[str, Any]):
        self.inventory = inventory
        self.templar = Templar()
        self.extra_vars = dict(extra_vars)
        self.groups = inventory.group_map()
        self.hostvars = _HostVarsView(self)
        self._host_vars: dict[str, LazyVars] = {}

    def magic(self, host: str) -> dict[str, Any]:
        return {
            **self.inventory.magic_vars(host),
            "groups": self.groups,
            "hostvars": self.hostvars,
            "omit": OMIT,
        }

    def _origins(self, host: str, play: Play | None) -> dict[str, Location]:
        origins = dict(self.inventory.hosts[host].origins)
        if play is not None:
            origins.update(play.var_where)
        origins.update({k: Location("-e") for k in self.extra_vars})
        return origins

    def host_vars(self, host: str) -> LazyVars:
        if host not in self._host_vars:
            raw = {**self.inventory.hosts[host].vars, **self.extra_vars}
            self._host_vars[host] = LazyVars(
                self.templar, raw, self.magic(host), self._origins(host, None)
            )
        return self._host_vars[host]

    def play_vars(self, play: Play, host: str) -> LazyVars:
        raw = {**self.inventory.hosts[host].vars, **play.vars, **self.extra_vars}
        fixed = {**self.magic(host), "playbook_dir": str(Path(play.file).parent)}
        return LazyVars(self.templar, raw, fixed, self._origins(host, play))


def _drop_omitted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_omitted(v) for k, v in value.items() if v != OMIT}
    if isinstance(value, list):
        return [_drop_omitted(v) for v in value if v != OMIT]
    return value


def _when_holds(fleet: _Fleet, play: Play, task: Task, variables: LazyVars) -> bool:
    at = task.when_where or task.where
    for expression in task.when:
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
            return False
    return True


def render_task(
    fleet: _Fleet, play: Play, task: Task, variables: LazyVars, catalog: Mapping[str, dict]
) -> HostTask | None:
    """The task as this host runs it, or None when its `when` does not hold."""
    if not _when_holds(fleet, play, task, variables):
        return None
    context = play.context(task)
    args: dict[str, Any] = {}
    for key, value in task.args.items():
        try:
            rendered = fleet.templar.render(value, variables)
        except TemplateFailure as exc:
            raise InputError(f"argument '{key}': {exc}", task.where_of(key), context) from None
        if rendered != OMIT:
            args[key] = _drop_omitted(rendered)
    checked = validate_args(task.module, catalog[task.module], args, task.where_of, context)
    return HostTask(task.index, task.display_name, task.module, checked, task.where)


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
    fleet = _Fleet(inventory, extra_vars or {})
    only = set(tags) if tags else None
    skip = set(skip_tags) if skip_tags else None
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
        kept = [t for t in play.tasks if should_run(set(play.tags) | set(t.tags), only, skip)]
        plan = PlayPlan(play=play, hosts=hosts, tasks={})
        for host in hosts:
            variables = fleet.play_vars(play, host)
            host_tasks: list[HostTask] = []
            for task in kept:
                try:
                    rendered = render_task(fleet, play, task, variables, catalog)
                except InputError as exc:
                    problems.add(exc, host)
                    continue
                if rendered is not None:
                    host_tasks.append(rendered)
            plan.tasks[host] = host_tasks
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
    fleet = _Fleet(inventory, extra_vars or {})
    task = next(t for t in play.tasks if t.index == task_index)
    problems = _Problems()
    rendered: dict[str, HostTask | None] = {}
    for host in hosts:
        try:
            rendered[host] = render_task(fleet, play, task, fleet.play_vars(play, host), catalog)
        except InputError as exc:
            problems.add(exc, host)
    problems.raise_if_any()
    return rendered
