"""Health gates: what must hold on a batch just changed before the next batch starts.

- `reachable`: every host of the batch accepts a NEW SSH connection (not the one the run
  keeps open: that one could outlive a broken sshd or path).
- `mesh_check`: `vnetctl mesh check` of the meshes the play declares, on the pairs that
  touch the batch: from each of its hosts to every other member that has the mesh, and
  back, at each segment's full MTU with don't-fragment and at a small size. Members
  that do not have the mesh (yet) are no partners; a host of the batch without it fails.
  The probes (a throwaway namespace per segment) are removed at the end, on every host.
- `command`: a command (rendered per host when the playbook is planned) run on each
  host of the batch, as the play's user (with sudo under ansible_become); it passes
  with exit status 0, within its timeout (the host ends it then).

Gates run in the order written; the first that fails stops the check. Each returns, per
host of the batch, what failed there (nothing: it passed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shlex

from vnetctl.playbook.model import Gate
from vnetctl.playbook.render import PlayPlan
from vnetctl.runner.control import NullEvents
from vnetctl.runner.runner import Runner
from vnetctl.transport.base import ConnectionLost, Unreachable

Problems = dict[str, list[str]]  # host of the batch -> what failed there
STATES = {
    "mtu-broken": "MTU (small frames pass, full-size ones do not)",
    "unreachable": "unreachable",
}
OUTPUT_SHOWN = 300  # characters of a failed command's output in its message


async def check(runner: Runner, plan: PlayPlan, batch: list[str]) -> tuple[Gate, Problems] | None:
    """The first gate of `plan`'s play that fails on `batch`, with its problems."""
    for number, gate in enumerate(plan.play.health_gates):
        if gate.kind == "reachable":
            problems = await reachable(runner, batch)
        elif gate.kind == "mesh_check":
            problems = await mesh(runner, plan, batch)
        else:
            position = [g for g in plan.play.health_gates[:number] if g.kind == "command"]
            commands = {h: plan.gate_commands[h][len(position)] for h in batch}
            problems = await command(runner, commands, gate.timeout)
        if problems:
            return gate, problems
    return None


async def _each(runner: Runner, hosts: list[str], probe) -> Problems:
    limit = asyncio.Semaphore(max(1, runner.options.forks))

    async def one(host: str) -> tuple[str, str | None]:
        async with limit:
            return host, await probe(host)

    found = await asyncio.gather(*(one(h) for h in hosts))
    return {host: [problem] for host, problem in found if problem}


async def reachable(runner: Runner, hosts: list[str]) -> Problems:
    async def probe(host: str) -> str | None:
        bound = runner.specs[host].connect_timeout + 10
        try:
            conn = await asyncio.wait_for(runner.pool.fresh(host), bound)
        except (Unreachable, TimeoutError, OSError) as exc:
            return f"not reachable over a new SSH connection: {exc or 'timed out'}"
        await conn.close()
        return None

    return await _each(runner, hosts, probe)


def gate_command(command: str, timeout: float, spec) -> str:
    """The command as the host runs it: ended by `timeout` there, under sudo with become."""
    argv = ["timeout", "-k", "5", f"{timeout:g}", "sh", "-c", command]
    if spec.become:
        sudo = ["sudo", "-S", "-p", ""] if spec.become_password else ["sudo", "-n"]
        argv = [*sudo, "-H", "-u", spec.become_user, "--", *argv]
    return shlex.join(argv)


async def command(runner: Runner, commands: dict[str, str], timeout: float) -> Problems:
    async def probe(host: str) -> str | None:
        spec = runner.specs[host]
        try:
            conn = await runner.pool.get(host)
            process = await conn.start(gate_command(commands[host], timeout, spec))
            if spec.become and spec.become_password:
                await process.write(spec.become_password.reveal() + "\n")
            process.close_stdin()
            output = []
            async with asyncio.timeout(timeout + 15):
                while line := await process.readline():
                    output.append(line)
                status, stderr = await process.wait()
        except (Unreachable, ConnectionLost, TimeoutError, OSError) as exc:
            return f"could not run `{commands[host]}`: {exc or 'no answer'}"
        if status == 0:
            return None
        said = ("".join(output) + stderr).strip()[-OUTPUT_SHOWN:]
        why = f"timed out after {timeout:g} s" if status == 124 else f"exited with {status}"
        return f"`{commands[host]}` {why}" + (f": {said}" if said else "")

    return await _each(runner, list(commands), probe)


async def mesh(runner: Runner, plan: PlayPlan, batch: list[str]) -> Problems:
    # mesh check's own pieces; imported here: vnetctl.fleet.mesh.probe imports execute,
    # which imports the rollout that imports this module
    from vnetctl.fleet.mesh.probe import (  # noqa: PLC0415
        host_errors,
        layout_from,
        leave_out_unapplied,
        pair_states,
        probe_plans,
    )

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
