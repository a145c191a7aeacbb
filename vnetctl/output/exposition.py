"""Prometheus text exposition (0.0.4), for node_exporter's textfile collector: the one
writer of sample lines for every vnetctl textfile (drift, stats).

Conventions (https://prometheus.io/docs/practices/naming/): base units in the name
(`_seconds`, `_bytes`), counters end in `_total`, label values carry no whitespace (a
query or a silence matcher should not need quoting rules), and every series carries the
labels that name the check that wrote it, so that several textfiles in one directory never
write the same series (node_exporter drops a series collected twice).

Values are written in full: a float as the shortest text that reads back as the same
float (a Unix timestamp printed with six significant digits, `1.79569e+09`, is up to an
hour off, and every staleness alert built on it with it)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

Sample = tuple[Mapping[str, str], float]


def number(value: float) -> str:
    """A sample value as the exposition format reads it, without losing precision."""
    if isinstance(value, bool | int):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def label_value(value: str) -> str:
    """No whitespace: each run of it becomes one `_` ("not persisted" -> not_persisted)."""
    return re.sub(r"\s+", "_", str(value).strip())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(pairs: Mapping[str, str]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(label_value(v))}"' for k, v in pairs.items()) + "}"


class Exposition:
    """Families in the order added; `common` labels (the check's) lead every series."""

    def __init__(self, common: Mapping[str, str]):
        self.common = dict(common)
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        if kind == "counter" and not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        self.lines.extend(
            f"{name}{labels({**self.common, **pairs})} {number(value)}" for pairs, value in samples
        )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
