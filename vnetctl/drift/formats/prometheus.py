"""Prometheus text exposition (0.0.4) for node_exporter's textfile collector; the caller
writes it atomically (`formats.write`), so the collector never reads half a file.

Values are written in full: a float as the shortest text that reads back as the same
float (a Unix timestamp printed with six significant digits, `1.79569e+09`, is up to an
hour off, and every staleness alert built on it with it)."""

from __future__ import annotations

import math

from vnetctl.drift.report import DriftReport, HostState, Kind


def number(value: float) -> str:
    """A sample value as the exposition format reads it, without losing precision."""
    if isinstance(value, bool | int):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def render(report: DriftReport) -> str:
    lines: list[str] = []

    def metric(name: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{_labels(**labels)} {number(value)}" for labels, value in samples)

    reachable = [h for h in report.hosts if h.state is not HostState.UNREACHABLE]
    item_samples = []
    for host in reachable:
        for kind in Kind:
            n = sum(1 for i in host.items if i.kind is kind)
            item_samples.append(({"host": host.host, "kind": kind.value}, n))
    metric("vnetctl_drift_items",
           "Drift items per host and kind (missing, different, extra, not persisted).",
           item_samples)  # fmt: skip
    metric(
        "vnetctl_drift_host_up",
        "1 if the host was reached by the last drift check, 0 if unreachable.",
        [({"host": h.host}, h.state is not HostState.UNREACHABLE) for h in report.hosts],
    )
    metric(
        "vnetctl_drift_host_failed",
        "1 if a task failed on the host while planning (its drift is unknown).",
        [({"host": h.host}, h.state is HostState.FAILED) for h in report.hosts],
    )
    summary = [
        ("hosts_unreachable", "Hosts the last check could not reach.",
         len(report.hosts_in(HostState.UNREACHABLE))),
        ("inconsistent_fields", "Fields declared alike whose values differ between hosts.",
         len(report.consistency)),
        ("last_run_timestamp_seconds", "When the last drift check started (Unix time).",
         report.started),
        ("last_run_duration_seconds", "How long the last drift check took.", report.duration),
        ("exit_code", "Exit code of the last check: 0 no drift, 2 drift, 1 error.",
         report.exit_code()),
    ]  # fmt: skip
    if report.recorded:  # without a history, what was resolved is unknown: no sample
        summary.append(("resolved_items", "Drift items resolved since the previous run.",
                        len(report.resolved)))  # fmt: skip
    for name, help_text, value in summary:
        metric(f"vnetctl_drift_{name}", help_text, [({}, value)])
    return "\n".join(lines) + "\n"
