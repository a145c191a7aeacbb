"""Drift reports built by hand, for the format, history and CLI tests."""

from __future__ import annotations

from vnetctl.drift.report import (
    ConsistencyItem,
    DriftItem,
    DriftReport,
    HostDrift,
    HostState,
    Kind,
)

T0 = 1_790_000_000.0


def item(host="h2", kind=Kind.DIFFERENT, field="mtu", declared=9000, actual=1500, **kw):
    resource = kw.pop("resource", "bridge br-vm")
    return DriftItem(host, resource, kind, field, declared, actual, "site", "VM bridge", **kw)


def full_report(started: float = T0) -> DriftReport:
    """One host of each state, every kind of item, awkward characters included."""
    return DriftReport(
        playbook="playbooks/site.yml",
        inventory="inventory/lab.yml",
        started=started,
        duration=1.25,
        hosts=[
            HostDrift("h1", HostState.IN_SYNC, resources=2),
            HostDrift(
                "h2",
                HostState.DRIFTED,
                resources=2,
                items=[
                    item(first_seen=started - 600),
                    item(kind=Kind.EXTRA, field="ports", declared=None, actual='<x&"y>'),
                    item(
                        kind=Kind.MISSING,
                        field=None,
                        declared="present",
                        actual="absent",
                        resource="link a\\b\nc",
                    ),
                    item(
                        kind=Kind.MISSING,
                        field="segments.100.peers",
                        declared="10.0.0.3",
                        actual=None,
                        resource="mesh tenants",
                    ),
                ],
            ),  # fmt: skip
            HostDrift("h3", HostState.UNREACHABLE, reason="connection refused"),
            HostDrift("h4", HostState.FAILED, reason="VM bridge: ip: boom", resources=1),
        ],
        consistency=[
            ConsistencyItem(
                "site", "VM bridge", "bridge br-vm", "mtu", 9000, {"h1": 9000, "h2": 1500}
            )
        ],
        resolved=[item("h1", field="stp", declared=False, actual=True)],
        run_id=7,
        previous_run=started - 900,
    )


def clean_report(started: float = T0) -> DriftReport:
    return DriftReport(
        playbook="p.yml",
        inventory="i.yml",
        started=started,
        duration=0.5,
        hosts=[HostDrift("h1", HostState.IN_SYNC, resources=3)],
    )
