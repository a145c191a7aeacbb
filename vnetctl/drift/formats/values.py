"""How values and times read in the human formats (text, HTML, JUnit)."""

from __future__ import annotations

import json
import time
from typing import Any

from vnetctl.drift.report import DriftItem, DriftReport, Kind
from vnetctl.printable import printable


def value(v: Any) -> str:
    """One line: strings as they are but for control characters (escaped), others as
    JSON (which escapes them)."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return printable(v)
    return json.dumps(v, sort_keys=True, default=str)


def when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def age(seconds: float | None) -> str:
    """How long, in the two largest units: 45s, 12m, 3h 05m, 4d 2h."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def describe(item: DriftItem) -> str:
    """One line: what is wrong, with the declared and actual values."""
    field = printable(item.field or "")
    if item.kind is Kind.MISSING and item.field is None:
        return "declared, absent on the host"
    if item.kind is Kind.MISSING:
        return f"{field}: {value(item.declared)} declared, absent on the host"
    if item.kind is Kind.EXTRA:
        return f"{field}: {value(item.actual)} on the host, not declared"
    if item.kind is Kind.NOT_PERSISTED:
        if item.actual is None:
            return f"{field}: missing from the boot configuration"
        if item.declared is None:
            return f"{field}: in the boot configuration, no longer declared"
        return f"{field}: the boot configuration differs from the declaration"
    return f"{field}: declared {value(item.declared)}, actual {value(item.actual)}"


def resolved_note(report: DriftReport) -> str | None:
    """What the history says was resolved; None without a history (--no-history)."""
    if not report.recorded:
        return None
    if report.previous_run is None:
        return "first recorded run of this check"
    return f"{len(report.resolved)} resolved since the previous run"
