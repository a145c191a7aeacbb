"""`vnetctl mesh check`: traffic across the overlay, from every member to every other.

Three plays across the fleet on one set of connections (setup, ping, teardown: a
play ends on every host before the next starts, so every probe exists before anyone
pings). Each member's probe gets a link-local address in each segment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from vnetctl.errors import InputError, Location
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.execute import make_runner, run_interruptible
from vnetctl.fleet.expanders import Expansion, expand, hosts_to_reach
from vnetctl.fleet.mesh.expand import MODULE
from vnetctl.playbook.model import Play
from vnetctl.playbook.render import HostTask, PlayPlan
from vnetctl.runner.results import RunResult, Status

PROBE = "overlay_probe"
DEFAULT_MTU = {4: 1450, 6: 1430}  # 1500 underlay less VXLAN overhead


def probe_address(index: int) -> str:
    return f"169.254.{index // 250}.{index % 250 + 1}"


@dataclass
class Segment:
    vni: int
    bridge: str
    mtu: int


@dataclass
class ProbeLayout:
    """Per host: its segments (VNI -> Segment) and its probe address in each."""

    segments: dict[str, dict[int, Segment]] = field(default_factory=lambda: defaultdict(dict))
    address: dict[str, str] = field(default_factory=dict)

    def members(self, vni: int) -> list[str]:
        return [h for h, segs in self.segments.items() if vni in segs]


def layout_from(plans: Sequence) -> ProbeLayout:
    """From vxlan_mesh tasks already expanded (their `local` filled in)."""
    layout = ProbeLayout()
    for plan in plans:
        for host, tasks in plan.tasks.items():
            for task in (t for t in tasks if t.module == MODULE):
                family = 6 if ":" in (task.args.get("local") or "") else 4
                for seg in task.args.get("segments") or []:
                    mtu = seg.get("mtu") or DEFAULT_MTU[family]
                    layout.segments[host][seg["vni"]] = Segment(seg["vni"], seg["bridge"], mtu)
    for index, host in enumerate(sorted(layout.segments)):
        layout.address[host] = probe_address(index)
    return layout


def probe_plans(layout: ProbeLayout) -> list[PlayPlan]:
    hosts = sorted(layout.segments)

    def play(action: str, args_for) -> PlayPlan:
        where = Location(f"<vnetctl mesh check: {action}>")
        tasks = {
            h: [HostTask(0, f"probe {action}", PROBE, {"action": action, **args_for(h)}, where)]
            for h in hosts
        }
        return PlayPlan(
            Play(hosts=hosts, name=f"overlay probe: {action}", where=where), hosts, tasks
        )

    def segments(host: str) -> dict:
        return {
            "segments": [
                {"vni": s.vni, "bridge": s.bridge, "mtu": s.mtu, "address": layout.address[host]}
                for s in layout.segments[host].values()
            ]
        }

    def targets(host: str) -> dict:
        return {
            "targets": [
                {"host": other, "vni": vni, "address": layout.address[other], "mtu": seg.mtu}
                for vni, seg in layout.segments[host].items()
                for other in layout.members(vni)
                if other != host
            ]
        }

    return [play("setup", segments), play("ping", targets), play("teardown", segments)]


def pair_states(run: RunResult) -> list[dict]:
    """[{source, target, vni, state}] from the ping play's results."""
    pairs = []
    for result in run.results:
        for pair in result.data.get("pairs", []):
            pairs.append(
                {
                    "source": result.host,
                    "target": pair["host"],
                    "vni": pair["vni"],
                    "state": pair["state"],
                    "mtu": pair["mtu"],
                }
            )
    return sorted(pairs, key=lambda p: (p["vni"], p["source"], p["target"]))


def host_errors(run: RunResult) -> dict[str, str]:
    errors = {}
    for result in run.results:
        if result.status in (Status.FAILED, Status.UNREACHABLE):
            errors.setdefault(result.host, f"{result.task}: {result.msg}")
    return errors


def check_mesh(plans: list[PlayPlan], run: RunContext, playbook: str) -> RunResult:
    """Expand the meshes of `plans` (no preflight: a broken fleet is what this is for),
    then run the probe plays on the same connections."""
    runner = make_runner(run, hosts_to_reach(run, plans))

    async def probe() -> RunResult:
        try:
            expansion = Expansion(run, runner.gather_facts, preflight=False)
            layout = layout_from(await expand(expansion, plans))
            if not layout.segments:
                raise InputError(f"{playbook}: no vxlan_mesh task for these hosts")
            return await runner.run_plays(probe_plans(layout))
        finally:
            await runner.pool.close_all()

    return run_interruptible(runner, probe())
