"""The drift report as Prometheus metrics for node_exporter's textfile collector (the
exposition's conventions: vnetctl.output.exposition); the caller writes it atomically
(`formats.write`), so the collector never reads half a file.

Every series carries `check` (the check's id, as in `vnetctl drift history`) and
`playbook`, so that one textfile per check (vnetctl-site.prom beside vnetctl-edge.prom)
never collide. With a history, each drift item has its first-seen time and each host
the age of its oldest item: "drift present for more than an hour" is one comparison
(contrib/prometheus/vnetctl.rules.yml)."""

from __future__ import annotations

from pathlib import Path

from vnetctl.drift.report import DriftItem, DriftReport, HostDrift, HostState, Kind
from vnetctl.output.exposition import Exposition


def check_labels(report: DriftReport) -> dict[str, str]:
    return {"check": report.check_id, "playbook": Path(report.playbook).name}


def item_labels(item: DriftItem) -> dict[str, str]:
    resource = item.resource.replace(" ", ":", 1)  # "bridge br-vm" -> bridge:br-vm
    return {"host": item.host, "kind": item.kind.value, "resource": resource,
            "field": item.field or "", "item": item.key}  # fmt: skip


def drift_age(host: HostDrift, now: float) -> float | None:
    """Seconds since the host's oldest drift item was first seen: 0 in sync, None when
    unknown (unreachable or failed host, or items without a history)."""
    if host.state is HostState.IN_SYNC:
        return 0.0
    if host.state is not HostState.DRIFTED or any(i.first_seen is None for i in host.items):
        return None
    return max(0.0, now - min(i.first_seen for i in host.items))


def render(report: DriftReport) -> str:
    out = Exposition(check_labels(report))
    reachable = [h for h in report.hosts if h.state is not HostState.UNREACHABLE]
    out.family(
        "vnetctl_drift_items", "gauge",
        "Drift items per host and kind (missing, different, extra, not_persisted).",
        (({"host": h.host, "kind": kind.value}, sum(1 for i in h.items if i.kind is kind))
         for h in reachable for kind in Kind),
    )  # fmt: skip
    seen = [i for i in report.items() if i.first_seen is not None]
    if report.recorded:
        out.family(
            "vnetctl_drift_item_first_seen_timestamp_seconds", "gauge",
            "When this drift item was first seen by this check (Unix time).",
            ((item_labels(i), i.first_seen) for i in seen),
        )  # fmt: skip
        ages = ((h, drift_age(h, report.started)) for h in report.hosts)
        out.family(
            "vnetctl_drift_age_seconds", "gauge",
            "Age of the host's oldest drift item at the last check; 0 in sync.",
            (({"host": h.host}, age) for h, age in ages if age is not None),
        )  # fmt: skip
    out.family(
        "vnetctl_drift_host_up", "gauge",
        "1 if the host was reached by the last drift check, 0 if unreachable.",
        (({"host": h.host}, h.state is not HostState.UNREACHABLE) for h in report.hosts),
    )  # fmt: skip
    out.family(
        "vnetctl_drift_host_failed", "gauge",
        "1 if a task failed on the host while planning (its drift is unknown).",
        (({"host": h.host}, h.state is HostState.FAILED) for h in report.hosts),
    )  # fmt: skip
    summary = [
        ("hosts_unreachable", "Hosts the last check could not reach.",
         len(report.hosts_in(HostState.UNREACHABLE))),
        ("inconsistent_fields", "Fields declared alike whose values differ between hosts.",
         len(report.consistency)),
        ("last_run_timestamp_seconds", "When the last drift check started (Unix time).",
         report.started),
        ("last_run_duration_seconds", "How long the last drift check took.", report.duration),
        ("exit_code", "Exit code of the last check: 0 no drift, 2 drift on a reachable "
         "host, 3 hosts unreachable and no drift, 1 error.", report.exit_code()),
    ]  # fmt: skip
    if report.recorded:  # without a history, what was resolved is unknown: no sample
        summary.append(("resolved_items", "Drift items resolved since the previous run.",
                        len(report.resolved)))  # fmt: skip
    for name, help_text, value in summary:
        out.family(f"vnetctl_drift_{name}", "gauge", help_text, [({}, value)])
    return out.text()
