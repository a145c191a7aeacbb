"""`--format json`: one machine-readable document for the whole run."""

from __future__ import annotations

import json
from typing import TextIO

from vnetctl.runner.results import RunResult
from vnetctl.secrets import redact

ITEM_INDENT = "\n    "  # a result's lines, as json.dumps indents the list's items


def run_document(run: RunResult, *, playbook: str, check: bool) -> dict:
    """The run as JSON data, secrets redacted (unreachable reasons included)."""
    return redact({**_head(run, playbook, check), "results": [r.to_dict() for r in run.results]})


def _head(run: RunResult, playbook: str, check: bool) -> dict:
    return {
        "playbook": playbook,
        "check": check,
        "exit_code": run.exit_code(),
        "interrupted": run.interrupted,
        "stats": {host: dict(counts) for host, counts in run.stats().items()},
        "unreachable": run.unreachable,
        "rollout_stopped": run.rollout_stopped,
        "earlier_rollbacks": run.earlier,
    }


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=False, default=str)


def write(run: RunResult, out: TextIO, *, playbook: str, check: bool) -> None:
    """dumps(run_document(...)) and a newline, written a result at a time: a result's
    data is read back (PackedResult), redacted and encoded only while it is written."""
    head = dumps(redact({**_head(run, playbook, check), "results": []}))
    if not run.results:
        out.write(head + "\n")
        return
    opening, closing = head.removesuffix("]\n}"), "\n  ]\n}\n"  # "results" is last
    for n, result in enumerate(run.results):
        item = dumps(redact(result.to_dict())).replace("\n", ITEM_INDENT)
        out.write(f"{opening if n == 0 else ','}{ITEM_INDENT}{item}")
    out.write(closing)
