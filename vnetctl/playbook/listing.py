"""What `--list-hosts`, `--list-tasks`, `--list-tags` print, in ansible-playbook's format,
and where `--start-at-task` starts.

The lists come from the playbook planned for every host (so a playbook that lists is
one that would run: every bad input is found first) and contact no host. Tasks are
listed once each, as written (a task with `loop` once, a role's task as `ROLE : NAME`),
kept by --tags/--skip-tags as a run keeps them. A play with `serial` also lists its
batches (ansible-playbook does not).
"""

from __future__ import annotations

import dataclasses
import difflib
from fnmatch import fnmatchcase

from vnetctl.errors import InputError
from vnetctl.playbook.model import Play, Task
from vnetctl.playbook.render import PlayPlan
from vnetctl.playbook.serial import batches
from vnetctl.playbook.tags import task_kept
from vnetctl.printable import printable


def matches(task: Task, pattern: str) -> bool:
    """As ansible-playbook: the task's name or `ROLE : NAME`, exactly or as a glob."""
    names = [n for n in (task.name, task.display_name) if n]
    return any(n == pattern or fnmatchcase(n, pattern) for n in names)


def start_at(plays: list[Play], pattern: str) -> list[Play]:
    """The plays from the first task matching `pattern` on: earlier tasks and plays are
    left out. No task matching is an error (ansible-playbook says so, and runs nothing)."""
    for position, play in enumerate(plays):
        for index, task in enumerate(play.tasks):
            if matches(task, pattern):
                first = dataclasses.replace(play, tasks=play.tasks[index:])
                return [first, *plays[position + 1 :]]
    names = list(dict.fromkeys(t.display_name for p in plays for t in p.tasks))
    close = difflib.get_close_matches(pattern, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise InputError(
        f"no task matches {pattern!r}{hint}; tasks: {', '.join(names) or 'none'}",
        None,
        "--start-at-task",
    )


def _tags(tags) -> str:
    return "[" + ", ".join(sorted(set(tags))) + "]"


def listing(
    playbook: str,
    plans: list[PlayPlan],
    *,
    hosts: bool = False,
    tasks: bool = False,
    tags: bool = False,
    only: list[str] | None = None,
    skip: list[str] | None = None,
) -> str:
    only_set, skip_set = (set(only) if only else None), (set(skip) if skip else None)
    lines = ["", f"playbook: {playbook}"]
    for number, plan in enumerate(plans, start=1):
        play = plan.play
        pattern = play.hosts if isinstance(play.hosts, str) else ",".join(play.hosts)
        title = printable(f"  play #{number} ({pattern}): {play.display_name}")
        lines += ["", f"{title}\tTAGS: {_tags(play.tags)}"]
        kept = [t for t in play.tasks if task_kept(play, t, only_set, skip_set)]
        if hosts:
            patterns = [play.hosts] if isinstance(play.hosts, str) else play.hosts
            lines.append(f"    pattern: {patterns!r}")
            lines.append(f"    hosts ({len(plan.hosts)}):")
            lines += [f"      {printable(h)}" for h in plan.hosts]
            if play.serial:
                cut = batches(plan.hosts, play.serial)
                shown = " | ".join(" ".join(b) for b in cut)
                lines.append(f"    batches ({len(cut)}, serial {play.serial}): {shown}")
        if tasks:
            lines.append("    tasks:")
            for task in kept:
                name = printable(task.display_name)  # a line break would print a task of its own
                lines.append(f"      {name}\tTAGS: {_tags([*task.tags, *play.tags])}")
        if tags:
            found = {t for task in kept for t in (*task.tags, *play.tags)}
            lines.append(f"      TASK TAGS: {_tags(found)}")
    return "\n".join(lines) + "\n"
