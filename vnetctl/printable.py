"""Text from inventories, playbooks and hosts, made safe to print on a terminal.

A name or value holding a line break would print a line of its own (`ok: [h1] ...`,
forged), and an escape sequence could rewrite what the terminal shows. Names are
checked where they are read (vnet_core's name rules); what is printed is escaped here
all the same: every control character (C0, DEL, C1, and Unicode's line and paragraph
separators) is written as its Python escape, `\\n`, `\\x1b`, `\\u2028`.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")
CONTINUATION = "    "  # further lines of a message, under the line they belong to


def _escaped(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


def printable(text: object) -> str:
    """`text` as one line, each control character escaped."""
    return _CONTROL.sub(_escaped, str(text))


def printable_lines(text: object) -> str:
    """A message whose own line breaks are kept (a tool's stderr, a traceback): each
    further line indented under the first, so that none can pass for a line of its own;
    every other control character escaped."""
    lines = str(text).split("\n")
    return ("\n" + CONTINUATION).join(printable(line) for line in lines)
