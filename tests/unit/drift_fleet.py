"""A fleet-sized drift report, for the HTML tests: many hosts in sync, a few drifted
(oldest items hours old), one failed and one unreachable, in inventory order."""

from __future__ import annotations

from drift_samples import T0, item

from vnetctl.drift.report import DriftReport, HostDrift, HostState, Kind

KINDS = list(Kind)


def fleet_report(hosts: int = 60, drifted=(7, 23, 41, 58), failed=(12,), unreachable=(33,)):
    report = DriftReport("playbooks/site.yml", "inventory/prod.yml", T0, 42.0, run_id=9,
                         previous_run=T0 - 900)  # fmt: skip
    for n in range(1, hosts + 1):
        name = f"hv{n:03d}"
        if n in drifted:
            items = [item(name, kind=KINDS[k % 4], field=f"f{k}", first_seen=T0 - 3600 * (k + 1))
                     for k in range(n % 4 + 1)]  # fmt: skip
            report.hosts.append(HostDrift(name, HostState.DRIFTED, resources=5, items=items))
        elif n in failed:
            report.hosts.append(HostDrift(name, HostState.FAILED, "VM bridge: boom", 2))
        elif n in unreachable:
            report.hosts.append(HostDrift(name, HostState.UNREACHABLE, "connection refused"))
        else:
            report.hosts.append(HostDrift(name, HostState.IN_SYNC, resources=5))
    return report
