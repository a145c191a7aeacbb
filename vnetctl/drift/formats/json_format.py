"""JSON: `DriftReport.to_dict()`, described by schema/drift-report.schema.json."""

from __future__ import annotations

import json
from importlib import resources

from vnetctl.drift.report import DriftReport

SCHEMA_FILE = "drift-report.schema.json"


def render(report: DriftReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str) + "\n"


def schema() -> dict:
    return json.loads(resources.files("vnetctl.drift").joinpath("schema", SCHEMA_FILE).read_text())
