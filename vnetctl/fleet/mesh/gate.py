"""The `mesh_check` health gate: `vnetctl mesh check` of the meshes the play declares,
on the pairs that touch the batch: from each of its hosts to every other member that
has the mesh, and back, at each segment's full MTU with don't-fragment and at a small
size. Members that do not have the mesh (yet) are no partners; a host of the batch
without it fails. The probes (a throwaway namespace per segment) are removed at the end,
on every host."""

from __future__ import annotations

import dataclasses

from vnetctl.fleet.gates import Problems
from vnetctl.fleet.mesh.probe import (
    host_errors,
    layout_from,
    leave_out_unapplied,
    pair_states,
    probe_plans,
)
from vnetctl.playbook.render import PlayPlan
from vnetctl.runner.control import NullEvents
from vnetctl.runner.runner import Runner

STATES = {
    "mtu-broken": "MTU (small frames pass, full-size ones do not)",
    "unreachable": "unreachable",
}


async def check_pairs(runner: Runner, plan: PlayPlan, batch: list[str]) -> Problems:
    """The gate: per host of the batch, what is broken on its pairs."""
    layout = layout_from([plan])  # every host of the play with a mesh, as expanded
    facts = await runner.gather_facts(sorted(layout.segments))
    problems: Problems = {}
    partners: list[str] = []  # problems of other members: the batch cannot be proven

    def on(host: str, text: str) -> None:
        if host in batch:
            problems.setdefault(host, []).append(text)
        else:
            partners.append(f"{host}: {text}")

    for host, found in facts.items():
        if not isinstance(found, dict):
            on(host, f"cannot read its facts: {found}")
            del layout.segments[host]
    for host, segments in leave_out_unapplied(layout, facts).items():
        if host in batch:
            which = ", ".join(f"VNI {s.vni} (no bridge {s.bridge})" for s in segments)
            on(host, f"the mesh is not applied: {which}")
    if any(h in layout.segments for h in batch) and len(layout.segments) > 1:
        options = dataclasses.replace(runner.options, check=False, confirm_timeout=None)
        probe = Runner(runner.catalog, runner.specs, options, NullEvents(), runner.pool,
                       runner.stop)  # fmt: skip
        result = await probe.run_plays(probe_plans(layout))
        for host, error in {**host_errors(result), **result.unreachable}.items():
            on(host, f"probe failed: {error}")
        for host, text in broken_pairs(pair_states(result), batch):
            problems.setdefault(host, []).append(text)
    for text in partners:
        for host in batch:
            problems.setdefault(host, []).append(f"cannot check its pairs with {text}")
    return problems


def broken_pairs(pairs: list[dict], batch: list[str]) -> list[tuple[str, str]]:
    """(host of the batch, what is broken to and from it), one line per state and MTU:
    `VNI 100, 200 at MTU 8950: MTU (...) to h2, h3; from h2, h3`."""
    found: dict[tuple[str, str, int], dict[str, set]] = {}
    for pair in pairs:
        if pair["state"] == "reachable":
            continue
        ends = ((pair["source"], pair["target"], "to"), (pair["target"], pair["source"], "from"))
        for host, other, way in ends:
            if host in batch:
                group = found.setdefault((host, pair["state"], pair["mtu"]),
                                         {"vni": set(), "to": set(), "from": set()})  # fmt: skip
                group["vni"].add(pair["vni"])
                group[way].add(other)
    lines = []
    for (host, state, mtu), group in found.items():
        ways = "; ".join(f"{way} {', '.join(sorted(group[way]))}"
                         for way in ("to", "from") if group[way])  # fmt: skip
        vnis = ", ".join(map(str, sorted(group["vni"])))
        lines.append((host, f"VNI {vnis} at MTU {mtu}: {STATES.get(state, state)} {ways}"))
    return lines
