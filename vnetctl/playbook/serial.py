"""Rolling changes, as a play declares them: `serial`, `max_fail_percentage` and
`health_gates`, checked when the playbook loads; and the batches `serial` makes.

`serial`, with Ansible's meaning: a number of hosts (`3`), a percentage of the play's
hosts (`"30%"`: rounded down, at least 1; in floating point, as Ansible computes it, so
58% of 50 hosts is 28), or a list of them (`[1, "10%", "100%"]`): one batch per item,
the last item repeating until every host had its batch. Unlike Ansible, which reads
`serial: 0` as "all hosts at once", 0 and 0% are refused: leave `serial` out for that.
Percentages above 100% are refused too.

`max_fail_percentage` (0..100, a number or "N%"), with Ansible's meaning: the rollout
stops when the hosts that FAILED in a batch are strictly more than this share of the
batch; unreachable hosts do not count (as in Ansible; the `reachable` gate stops on
them). Whether or not it is set, a batch in which every host failed or was unreachable
stops the rollout, as in Ansible. (Ansible checks after each task, its hosts moving in
lockstep; vnetctl's hosts each run their play in one process, so it checks when the
batch's play has ended on every host.)

`health_gates`: checks of the batch just changed that must pass before the next batch
starts: a gate's name (`reachable`, `mesh_check`, ...) or `{command: CMD, timeout: 60s}`.
Which names exist, and what each needs from its play, the gates say themselves when the
playbook loads (vnetctl.fleet.gates).
"""

from __future__ import annotations

import re
from typing import Any

from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.playbook.fields import duration
from vnetctl.playbook.model import Gate
from vnetctl.yamlsrc import where_of

COMMAND_TIMEOUT = 60.0
GATE_NAME = re.compile(r"[a-z][a-z0-9_]*")


def parse_serial(value: Any, at: Location, context: str) -> list[int | str]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise InputError("serial: an empty list has no batch size", at, context)
    parsed = []
    for i, item in enumerate(items):
        item_at = where_of(value, i, at) if isinstance(value, list) else at
        parsed.append(_batch_size(item, item_at, context))
    return parsed


def _batch_size(item: Any, at: Location, context: str) -> int | str:
    hint = "a number of hosts (3), a percentage of them ('30%') or a list of these"
    if isinstance(item, bool) or not isinstance(item, int | str):
        raise InputError(f"serial: expected {hint}, got {type_name(item)} {item!r}", at, context)
    text = str(item).strip()
    percent = text.endswith("%")
    number = text[:-1].strip() if percent else text
    if not number.isdigit():
        raise InputError(f"serial: expected {hint}, got {item!r}", at, context)
    if int(number) == 0:
        raise InputError(
            f"serial: {item!r} is no batch size (Ansible reads it as every host at once: "
            "leave serial out for that)",
            at,
            context,
        )
    if percent and int(number) > 100:
        raise InputError(f"serial: {item!r} is more than every host", at, context)
    return f"{int(number)}%" if percent else int(number)


def parse_max_fail(value: Any, at: Location, context: str) -> float:
    text = str(value).strip() if isinstance(value, int | float | str) else ""
    try:
        if isinstance(value, bool):
            raise ValueError
        share = float(text.removesuffix("%"))
    except ValueError:
        raise InputError(
            f"max_fail_percentage: expected a percentage (0..100, e.g. 20 or '20%'), got {value!r}",
            at,
            context,
        ) from None
    if not 0 <= share <= 100:
        raise InputError(f"max_fail_percentage: {value!r} is outside 0..100", at, context)
    return share


def parse_gates(value: Any, at: Location, context: str) -> list[Gate]:
    if not isinstance(value, list) or not value:
        raise InputError(
            "health_gates must be a list of checks: a gate's name (reachable, mesh_check, "
            "...) or {command: CMD, timeout: 60s}",
            at,
            context,
        )
    return [_gate(item, where_of(value, i, at), context) for i, item in enumerate(value)]


def _gate(item: Any, at: Location, context: str) -> Gate:
    if isinstance(item, str) and GATE_NAME.fullmatch(item) and item != "command":
        return Gate(kind=item, where=at)
    if isinstance(item, dict) and "command" in item:
        for key in item:
            if key not in ("command", "timeout"):
                raise InputError(
                    f"health gate command: unknown key {key!r} (it has command and timeout)",
                    where_of(item, key, at),
                    context,
                )
        command = item["command"]
        if not isinstance(command, str) or not command.strip():
            raise InputError("health gate command: expected a shell command", at, context)
        timeout = COMMAND_TIMEOUT
        if item.get("timeout") is not None:
            timeout = duration(item["timeout"], where_of(item, "timeout", at), context,
                               "health gate timeout", 1, 3600)  # fmt: skip
        return Gate(kind="command", command=command.strip(), timeout=timeout, where=at)
    shown = item if not isinstance(item, dict) else ", ".join(map(str, item))
    raise InputError(
        f"unknown health gate {shown!r}: a gate is a name or {{command: CMD, timeout: 60s}}",
        at,
        context,
    )


def batch_sizes(serial: list[int | str] | None, total: int) -> list[int]:
    """How many hosts each batch takes, for `total` hosts."""
    if not serial:
        return [total] if total else []
    sizes: list[int] = []
    left, step = total, 0
    while left > 0:
        item = serial[min(step, len(serial) - 1)]
        size = item if isinstance(item, int) else percent_of(int(item[:-1]), total)
        size = min(size, left)
        sizes.append(size)
        left -= size
        step += 1
    return sizes


def percent_of(percent: int, total: int) -> int:
    """N% of every host of the play: rounded down, at least 1. In floating point, as
    Ansible computes it: 58% of 50 hosts is 28, not 29."""
    return max(1, int(percent / 100.0 * total))


def batches(hosts: list[str], serial: list[int | str] | None) -> list[list[str]]:
    """The play's hosts, in order, cut into batches."""
    out, start = [], 0
    for size in batch_sizes(serial, len(hosts)):
        out.append(hosts[start : start + size])
        start += size
    return out


def over_budget(failed: int, batch: int, max_fail: float | None) -> bool:
    """More than max_fail_percentage of the batch's hosts failed (strictly more)."""
    return max_fail is not None and batch > 0 and failed * 100 > max_fail * batch
