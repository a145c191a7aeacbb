"""Drift report formats: one renderer per format, one atomic writer for all of them."""

from __future__ import annotations

from pathlib import Path

from vnetctl.drift.files import write_atomic
from vnetctl.drift.formats import html, json_format, junit, prometheus, text
from vnetctl.drift.report import DriftReport
from vnetctl.secrets import redact

FORMATS = ("text", "json", "html", "junit", "prometheus")
_RENDERERS = {
    "text": text.render,
    "json": json_format.render,
    "html": html.render,
    "junit": junit.render,
    "prometheus": prometheus.render,
}


def render(report: DriftReport, fmt: str, *, color: bool = False) -> str:
    """The report in `fmt`, secrets redacted."""
    if fmt == "text":
        return redact(text.render(report, color=color))
    return redact(_RENDERERS[fmt](report))


def write(report: DriftReport, fmt: str, path: Path) -> None:
    """Atomically: node_exporter's textfile collector or a web server never reads half."""
    write_atomic(Path(path), render(report, fmt))
