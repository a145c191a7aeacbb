"""Tags, as in Ansible: a task's tags are its own plus its play's, its role's and its
imports'; an untagged task has the tag `untagged`. `--tags` keeps tasks sharing a tag
with it, and tasks tagged `always`; `all` (the default) keeps all but tasks tagged
`never`, `tagged` keeps tagged tasks. `--skip-tags` then drops tasks sharing a tag with
it (`always` tasks only when `always` itself is skipped). The tasks of an
`include_tasks` run only when the include itself is kept by these rules (its tags, not
its tasks'). Unlike Ansible, a tag in --tags or --skip-tags that no play or task has is
an error: a typo would otherwise run nothing, or skip nothing.
"""

from __future__ import annotations

import difflib

from vnetctl.errors import InputError
from vnetctl.playbook.model import Play, Task

SPECIAL_TAGS = frozenset({"all", "always", "never", "tagged", "untagged"})


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


def task_kept(play: Play, task: Task, only: set[str] | None, skip: set[str] | None) -> bool:
    """The tags keep the task, and every include_tasks around it."""
    scopes = [task.tags, *task.include_tags]
    return all(should_run(set(play.tags) | set(tags), only, skip) for tags in scopes)


def known_tags(plays: list[Play]) -> set[str]:
    found = {t for p in plays for t in p.tags}
    for play in plays:
        for task in play.tasks:
            found.update(task.tags)
            found.update(t for tags in task.include_tags for t in tags)
    return found


def check_tags(plays: list[Play], tags: list[str] | None, skip_tags: list[str] | None) -> None:
    """Every tag asked for exists in the playbook (or is one of Ansible's special tags)."""
    known = known_tags(plays)
    for option, asked in (("--tags", tags or []), ("--skip-tags", skip_tags or [])):
        for tag in asked:
            if tag not in known and tag not in SPECIAL_TAGS:
                close = difflib.get_close_matches(tag, sorted(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                listed = ", ".join(sorted(known)) or "none"
                raise InputError(
                    f"unknown tag '{tag}'{hint}; tags in the playbook: {listed}", None, option
                )
