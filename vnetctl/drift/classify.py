"""From a check-mode run to drift: each planned change becomes a missing, different or
extra item; fields declared alike across hosts but set apart on them become
consistency items.

Nothing here knows a module: it reads the field-level changes and the before/after
states every module returns (the same ones `run --check --diff` shows), so a module
added later is covered as soon as it reports them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from vnetctl.drift.report import (
    ConsistencyItem,
    DriftItem,
    HostDrift,
    HostState,
    Kind,
    by_host,
)
from vnetctl.runner.results import RunResult, Status, TaskResult

Flatten = Callable[[Any], dict[str, Any]]
ABSENT = (None, "absent")


def classify_run(run: RunResult, flatten: Flatten) -> tuple[list[HostDrift], list]:
    by_host: dict[str, list[TaskResult]] = defaultdict(list)
    for result in run.results:
        by_host[result.host].append(result)
    hosts = [_host_drift(host, by_host[host], run.unreachable.get(host)) for host in run.hosts]
    return hosts, consistency(run.results, flatten)


def _host_drift(host: str, results: list[TaskResult], unreachable: str | None) -> HostDrift:
    if unreachable is not None:
        return HostDrift(host=host, state=HostState.UNREACHABLE, reason=unreachable)
    failed = [r for r in results if r.status is Status.FAILED]
    checked = [r for r in results if r.status in (Status.OK, Status.CHANGED)
               and not r.data.get("verb")]  # debug, assert...: no resource  # fmt: skip
    items = [item for r in checked if r.status is Status.CHANGED for item in task_items(r)]
    items += [item for r in checked for item in waiting_items(r)]
    if failed:
        reason = "; ".join(f"{r.task}: {r.msg}" for r in failed)
        state = HostState.FAILED
    else:
        reason, state = "", HostState.DRIFTED if items else HostState.IN_SYNC
    return HostDrift(host=host, state=state, reason=reason, resources=len(checked), items=items)


def resource_of(result: TaskResult) -> str:
    return result.resource or f"{result.module} ({result.task})"


def task_items(result: TaskResult) -> list[DriftItem]:
    """One result's changes as drift items.

    A declared object absent on the host (`state` or `x.state` going absent -> present)
    is one `missing` item, not one item per field it would get. In a list field (ports,
    peers...) each item only on the host is `extra`, each only declared is `missing`.
    """

    def item(kind: Kind, field: str | None, declared: Any, actual: Any) -> DriftItem:
        return DriftItem(
            host=result.host,
            resource=resource_of(result),
            kind=kind,
            field=field,
            declared=declared,
            actual=actual,
            play=result.play,
            task=result.task,
        )

    missing_objects = [
        c["field"].removesuffix("state").rstrip(".")
        for c in result.changes
        if _is_state(c["field"]) and c["before"] in ABSENT and c["after"] == "present"
    ]
    items = [item(Kind.MISSING, prefix or None, "present", "absent") for prefix in missing_objects]
    for change in result.changes:
        field, before, after = change["field"], change["before"], change["after"]
        if any(_under(field, prefix) for prefix in missing_objects):
            continue
        if isinstance(before, list) and isinstance(after, list):
            items += [item(Kind.EXTRA, field, None, v) for v in _minus(before, after)]
            items += [item(Kind.MISSING, field, v, None) for v in _minus(after, before)]
        else:
            items.append(item(Kind.DIFFERENT, field, after, before))
    for change in (result.data.get("persist") or {}).get("files") or []:
        # the file's path; declared: the content vnetctl writes, actual: what is there
        items.append(item(Kind.NOT_PERSISTED, "/" + change["path"], change["after"],
                          change["before"]))  # fmt: skip
    return items


def waiting_items(result: TaskResult) -> list[DriftItem]:
    """What a task declares but could not plan yet (`waiting`: a mirror whose VM port is
    not there), each a missing item: the declared state is not reached."""
    return [
        DriftItem(
            host=result.host,
            resource=resource_of(result),
            kind=Kind.MISSING,
            field=field,
            declared="present",
            actual="absent",
            play=result.play,
            task=result.task,
        )  # fmt: skip
        for field in sorted(result.data.get("waiting") or {})
    ]


def _is_state(field: str) -> bool:
    return field == "state" or field.endswith(".state")


def _under(field: str, prefix: str) -> bool:
    return not prefix or field == prefix or field.startswith(prefix + ".")


def _minus(values: list, others: list) -> list:
    other = {str(v) for v in others}  # as the host library compares lists
    return [v for v in values if str(v) not in other]


def consistency(results: Iterable[TaskResult], flatten: Flatten) -> list[ConsistencyItem]:
    """Per task and resource: fields every host declares with one value but whose actual
    values differ between hosts (a host-specific field, such as a VTEP, never qualifies)."""
    groups: dict[tuple, list[TaskResult]] = defaultdict(list)
    for r in results:
        if r.status in (Status.OK, Status.CHANGED) and r.diff:
            groups[(r.play, r.index, resource_of(r))].append(r)
    found = []
    for (play, _index, resource), members in groups.items():
        if len(members) < 2:
            continue
        declared = [flatten(m.diff.get("after") or {}) for m in members]
        actual = [flatten(m.diff.get("before") or {}) for m in members]
        for field in sorted(declared[0]):
            wanted = {_key(d.get(field)) for d in declared}
            values = dict(
                by_host({m.host: a.get(field) for m, a in zip(members, actual, strict=True)})
            )
            if len(wanted) == 1 and len({_key(v) for v in values.values()}) > 1:
                found.append(
                    ConsistencyItem(
                        play=play,
                        task=members[0].task,
                        resource=resource,
                        field=field,
                        declared=declared[0].get(field),
                        values=values,
                    )
                )
    return found


def _key(value: Any) -> str:
    if isinstance(value, list):
        return repr(sorted(map(str, value)))
    return repr(value)
