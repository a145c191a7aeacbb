"""Durations as operators write them: 90, 90s, 15m, 1h30m, 2d."""

from __future__ import annotations

import re

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")


def parse_duration(value: object, *, unit: bool = False) -> float:
    """Seconds from a number (seconds) or a text with units; ValueError says what was
    expected. `unit`: a bare number is refused (an interval of 15: seconds or minutes?)."""
    expected = (
        "a number with a unit s, m, h or d (e.g. 90s, 15m, 1h30m)"
        if unit
        else "a duration (e.g. 90, 15m, 1h30m)"
    )
    if isinstance(value, bool) or (unit and not isinstance(value, str)):
        raise ValueError(f"expected {expected}, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if not unit:
        try:
            return float(text)
        except ValueError:
            pass
    if not _DURATION.fullmatch(text):
        raise ValueError(f"expected {expected}, got {value!r}")
    return sum(float(n) * UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", text))
