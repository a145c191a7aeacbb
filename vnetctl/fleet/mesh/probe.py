"""`vnetctl mesh check`: traffic across the overlay, from every member to every other,
and across every VLAN an OVS port group declares (a segment check: a VLAN missing on a
trunk, or an MTU too small on the physical network, shows before VMs find it).

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
from vnetctl.fleet.mesh.sample import PairSample
from vnetctl.playbook.model import Play
from vnetctl.playbook.render import HostTask, PlayPlan
from vnetctl.runner.results import RunResult, Status

PROBE = "overlay_probe"
PORT_GROUP = "ovs_port_group"
DEFAULT_MTU = {4: 1450, 6: 1430}  # 1500 underlay less VXLAN overhead
VLAN_MTU = 1500  # a port group's VLAN without a declared MTU


def probe_address(index: int) -> str:
    return f"169.254.{index // 250}.{index % 250 + 1}"


@dataclass
class Segment:
    vni: int | None  # a VXLAN segment, or
    bridge: str
    mtu: int
    vlan: int | None = None  # a port group's VLAN on an OVS bridge
    group: str | None = None

    @property
    def key(self) -> str:
        return f"vlan{self.vlan}" if self.vlan else str(self.vni)

    @property
    def label(self) -> str:
        return f"VLAN {self.vlan} (port group {self.group})" if self.vlan else f"VNI {self.vni}"

    @property
    def ids(self) -> dict:
        return {"vlan": self.vlan} if self.vlan else {"vni": self.vni}


@dataclass
class ProbeLayout:
    """Per host: its segments (Segment.key -> Segment) and its probe address in each."""

    segments: dict[str, dict[str, Segment]] = field(default_factory=lambda: defaultdict(dict))
    address: dict[str, str] = field(default_factory=dict)

    def members(self, key: str) -> list[str]:
        return [h for h, segs in self.segments.items() if key in segs]


def layout_from(plans: Sequence) -> ProbeLayout:
    """From vxlan_mesh tasks already expanded (their `local` filled in), and the VLANs of
    ovs_port_group tasks."""
    layout = ProbeLayout()
    for plan in plans:
        for host, tasks in plan.tasks.items():
            for task in (t for t in tasks if t.module == MODULE):
                family = 6 if ":" in (task.args.get("local") or "") else 4
                for seg in task.args.get("segments") or []:
                    mtu = seg.get("mtu") or DEFAULT_MTU[family]
                    segment = Segment(seg["vni"], seg["bridge"], mtu)
                    layout.segments[host][segment.key] = segment
            for task in (t for t in tasks if t.module == PORT_GROUP and t.args.get("vlan")):
                args = task.args
                segment = Segment(None, args["bridge"], args.get("mtu") or VLAN_MTU,
                                  vlan=args["vlan"], group=args["name"])  # fmt: skip
                layout.segments[host][segment.key] = segment
    for index, host in enumerate(sorted(layout.segments)):
        layout.address[host] = probe_address(index)
    return layout


def chosen_pairs(layout: ProbeLayout, sample: PairSample) -> dict[str, dict[str, list[str]]]:
    """{segment key: {source: [targets]}}: the pairs `sample` probes in each segment."""
    keys = sorted({key for segs in layout.segments.values() for key in segs})
    return {key: sample.targets(key, layout.members(key)) for key in keys}


def pair_counts(layout: ProbeLayout, chosen: dict[str, dict[str, list[str]]]) -> tuple[int, int]:
    """(pairs probed, every ordered pair of every segment)."""
    probed = sum(len(t) for per_source in chosen.values() for t in per_source.values())
    total = 0
    for key in chosen:
        members = len(layout.members(key))
        total += members * (members - 1)
    return probed, total


def probe_plans(
    layout: ProbeLayout, count: int = 2, sample: PairSample | None = None
) -> list[PlayPlan]:
    """Setup, ping (`count` pings per size and pair, the pairs `sample` chooses; None:
    every pair), teardown."""
    hosts = sorted(layout.segments)
    chosen = chosen_pairs(layout, sample or PairSample(None))

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
                {**s.ids, "bridge": s.bridge, "mtu": s.mtu, "address": layout.address[host]}
                for s in layout.segments[host].values()
            ]
        }

    def targets(host: str) -> dict:
        return {
            "count": count,
            "targets": [
                {"host": other, **seg.ids, "address": layout.address[other], "mtu": seg.mtu}
                for key, seg in layout.segments[host].items()
                for other in chosen[key].get(host, [])
            ],
        }

    return [play("setup", segments), play("ping", targets), play("teardown", segments)]


def pair_states(run: RunResult) -> list[dict]:
    """[{source, target, vni, state, mtu, loss, rtt_ms}] from the ping play's results."""
    pairs = []
    for result in run.results:
        for pair in result.data.get("pairs", []):
            ids = {k: pair[k] for k in ("vni", "vlan") if pair.get(k)}
            pairs.append({"source": result.host, "target": pair["host"], **ids,
                          "state": pair["state"], "mtu": pair["mtu"], "loss": pair.get("loss"),
                          "rtt_ms": pair.get("rtt_ms")})  # fmt: skip
    return sorted(pairs, key=segment_order)


def segment_order(pair: dict) -> tuple:
    """VXLAN segments by VNI first, then VLANs; within one, by source and target."""
    return ("vlan" in pair, pair.get("vni") or pair.get("vlan"), pair["source"], pair["target"])


def host_errors(run: RunResult) -> dict[str, str]:
    errors = {}
    for result in run.results:
        if result.status in (Status.FAILED, Status.UNREACHABLE):
            errors.setdefault(result.host, f"{result.task}: {result.msg}")
    return errors


def check_mesh(
    plans: list[PlayPlan],
    run: RunContext,
    playbook: str,
    count: int = 2,
    expanded_out: list[PlayPlan] | None = None,
    probing: bool = True,
    sample: PairSample | None = None,
    sample_out: dict | None = None,
) -> tuple[RunResult, dict[str, list[Segment]]]:
    """Expand the meshes of `plans` (no preflight: a broken fleet is what this is for),
    then run the probe plays on the same connections (`count` pings per size and pair).
    Returns the probes' run and, per member, the segments not applied there (nothing to
    attach a probe to); `expanded_out` receives the expanded plans (each mesh task with
    its `local` and `peers`: what `vnetctl stats` compares the present peers with);
    `probing` False: the expansion alone (no probe, nothing changed on a host). `sample`
    chooses the pairs (None: every pair); `sample_out` receives its description with
    the pairs probed and the pairs not probed (PairSample.describe)."""
    runner = make_runner(run, hosts_to_reach(run, plans))

    async def probe() -> tuple[RunResult, dict[str, list[Segment]]]:
        try:
            declared = layout_from(plans)  # segments as declared, before expansion
            unreadable: dict[str, str] = {}  # members whose VTEP could not be read
            expansion = Expansion(run, runner.gather_facts, preflight=False,
                                  unchecked=unreadable)  # fmt: skip
            expanded = await expand(expansion, plans)
            if expanded_out is not None:
                expanded_out.extend(expanded)
            # a mesh with an unreachable member is left out of the expanded plans: probe
            # its segments as declared, and the unreachable member is reported as such
            layout = declared if unreadable else layout_from(expanded)
            if not layout.segments:
                raise InputError(
                    f"{playbook}: no vxlan_mesh task, nor ovs_port_group with a vlan, for "
                    "these hosts"
                )
            if not probing:
                return runner.result, {}
            facts = await runner.gather_facts(sorted(layout.segments))
            not_applied = leave_out_unapplied(layout, facts)
            chosen = chosen_pairs(layout, sample or PairSample(None))
            if sample_out is not None:
                sample_out.update((sample or PairSample(None)).describe(
                    *pair_counts(layout, chosen)))  # fmt: skip
            if layout.segments:
                await runner.run_plays(probe_plans(layout, count, sample))
            runner.result.interrupted = runner.stop.requested
            return runner.result, not_applied
        finally:
            await runner.pool.close_all()

    return run_interruptible(runner, probe())


def leave_out_unapplied(layout: ProbeLayout, facts: dict) -> dict[str, list[Segment]]:
    """Per member, the segments whose bridge it does not have (the mesh is not applied
    there): taken out of the layout, since a probe has nothing to attach to. A member
    whose facts could not be read stays: the probe reports why."""
    missing: dict[str, list[Segment]] = {}
    for host, segments in list(layout.segments.items()):
        host_facts = facts.get(host)
        if not isinstance(host_facts, dict):
            continue
        bridges = {link.get("ifname") for link in host_facts.get("links", [])}
        bridges |= set((host_facts.get("ovs") or {}).get("bridges") or {})
        for key, segment in sorted(segments.items()):
            if segment.bridge not in bridges:
                missing.setdefault(host, []).append(segment)
                del segments[key]
        if not segments:
            del layout.segments[host]
    return missing
