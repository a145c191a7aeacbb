"""`--format json`: one machine-readable document for the whole run."""

from __future__ import annotations

import json

from vnetctl.runner.results import RunResult
from vnetctl.secrets import redact


def run_document(run: RunResult, *, playbook: str, check: bool) -> dict:
    """The run as JSON data, secrets redacted (unreachable reasons included)."""
    return redact(
        {
            "playbook": playbook,
            "check": check,
            "exit_code": run.exit_code(),
            "interrupted": run.interrupted,
            "stats": {host: dict(counts) for host, counts in run.stats().items()},
            "unreachable": run.unreachable,
            "rollout_stopped": run.rollout_stopped,
            "earlier_rollbacks": run.earlier,
            "results": [r.to_dict() for r in run.results],
        }
    )


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=False, default=str)
