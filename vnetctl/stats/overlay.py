"""Overlay health for `vnetctl stats PLAYBOOK --peers/--probe`: the VXLAN peers each host's
mesh tasks declare (vxlan_mesh's own peer_devices(), on the tasks `vnetctl mesh check`
expands, `peers` filled from the members' VTEPs) beside the peers present, and the probe
of `mesh check` (vnetctl.fleet.mesh.probe: a throwaway namespace per segment, pings
across the overlay, bounded in count and time) giving each pair's loss and mean round
trip."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vnetctl.catalog import Catalog
from vnetctl.errors import Interrupted
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.mesh.probe import check_mesh, host_errors, pair_states
from vnetctl.fleet.mesh.sample import PairSample
from vnetctl.playbook.render import PlayPlan
from vnetctl.runner.results import Status
from vnetctl.stats.gather import StatsReport

MESH = "vxlan_mesh"


def peer_devices(plans: Iterable[Any], catalog: Catalog) -> dict[str, dict[str, list[str]]]:
    """{host: {device: [peer VTEPs]}} of the mesh tasks in `plans` (rendered: a Linux
    segment's device with no peers yet; expanded: every device with its peers)."""
    out: dict[str, dict[str, list[str]]] = {}
    for plan in plans:
        for host, tasks in plan.tasks.items():
            for task in tasks:
                if task.module == MESH and task.args.get("state", "present") == "present":
                    found = catalog.ask(MESH, "peer_devices", dict(task.args))
                    out.setdefault(host, {}).update(found)
    return out


def probe(
    plans: list[PlayPlan],
    run: RunContext,
    playbook: str,
    count: int | None,
    sample: PairSample | None = None,
) -> tuple[dict[str, Any] | None, dict[str, dict[str, list[str]]], bool]:
    """`mesh check`'s probe (`count` None: its expansion alone): (the probe's pairs,
    errors and segments not applied, or None; the peers each host's mesh tasks declare,
    per device; whether it failed on a host it reached). `sample`: the pairs probed, as
    `mesh check` chooses them (None: every pair)."""
    expanded: list[PlayPlan] = []
    described: dict = {}
    outcome, not_applied = check_mesh(plans, run, playbook, count or 1, expanded_out=expanded,
                                      probing=count is not None, sample=sample,
                                      sample_out=described)  # fmt: skip
    if outcome.interrupted:  # a partial probe proves nothing: no textfile either
        raise Interrupted("stats interrupted during the overlay probe: nothing written")
    failed = any(r.status == Status.FAILED for r in outcome.results)
    overlay = None
    if count is not None:
        overlay = {
            "pairs": pair_states(outcome),
            "sample": described,
            "errors": host_errors(outcome),
            "not_applied": {h: sorted(s.label for s in segs) for h, segs in not_applied.items()},
        }
    return overlay, peer_devices(expanded, run.catalog), failed


def compare_peers(report: StatsReport, declared: dict[str, dict[str, list[str]]]) -> None:
    """Each read host's declared peers per device, and those not present."""
    for host, devices in declared.items():
        if host in report.hosts:
            present = report.hosts[host].get("vxlan_peers") or {}
            report.hosts[host]["vxlan_peers_declared"] = devices
            report.hosts[host]["vxlan_peers_missing"] = {
                dev: sorted(set(peers) - set(present.get(dev) or []))
                for dev, peers in devices.items()
            }
