"""Counts and lists as people write them: "1 host", "3 hosts", "h2 to h17, db1"."""

from __future__ import annotations

import re
from collections.abc import Sequence

NUMBERED = re.compile(r"^(.*?)(\d+)$")
SHOWN = 30  # items of a list before "and N more"


def count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def names(items: Sequence[str]) -> str:
    """Names in their order, runs of three or more consecutive numbers with one prefix
    (and one width) written as a range: `lab-h5 to lab-h20, db1`."""
    groups: list[list[str]] = []
    for name in items:
        last = groups[-1][-1] if groups else None
        if last is not None and _next(last) == name:
            groups[-1].append(name)
        else:
            groups.append([name])
    parts = []
    for group in groups:
        parts += [f"{group[0]} to {group[-1]}"] if len(group) >= 3 else group
    more = f" and {len(parts) - SHOWN} more" if len(parts) > SHOWN else ""
    return ", ".join(parts[:SHOWN]) + more


def _next(name: str) -> str | None:
    found = NUMBERED.match(name)
    if found is None:
        return None
    prefix, digits = found.groups()
    return f"{prefix}{int(digits) + 1:0{len(digits)}d}"
