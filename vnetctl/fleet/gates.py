"""Health gates: what must hold on a batch just changed before the next batch starts.

- `reachable`: every host of the batch accepts a NEW SSH connection (not the one the run
  keeps open: that one could outlive a broken sshd or path).
- `command`: a command (rendered per host when the playbook is planned) run on each
  host of the batch, as the play's user (with sudo under ansible_become); it passes
  with exit status 0, within its timeout (the host ends it then).
- a gate a package under vnetctl/fleet registers, as its __init__.py's
  `GATES = [HealthGate(name=..., check=..., module=...)]` (vnetctl.fleet.plugins finds
  them): `mesh_check` (vnetctl.fleet.mesh.gate). `module`: the gate checks what tasks
  of that module made, so a play that declares none is refused when it loads.

Gates run in the order written; the first that fails stops the check. Each returns, per
host of the batch, what failed there (nothing: it passed).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from vnetctl.errors import InputError
from vnetctl.fleet import plugins
from vnetctl.playbook.model import Gate, Play
from vnetctl.playbook.render import PlayPlan
from vnetctl.runner.runner import Runner
from vnetctl.transport.base import ConnectionLost, Unreachable

Problems = dict[str, list[str]]  # host of the batch -> what failed there
OUTPUT_SHOWN = 300  # characters of a failed command's output in its message
COMMAND = "command"  # the gate a play writes as {command: CMD, timeout: 60s}


@dataclass(frozen=True)
class HealthGate:
    """A gate a play names: `check(runner, plan, batch)` says what failed where;
    `module`: a play must declare a task of it for the gate to have anything to check."""

    name: str
    check: Callable[[Runner, PlayPlan, list[str]], Awaitable[Problems]]
    module: str | None = None


def named() -> dict[str, HealthGate]:
    """The gates a play can name: `reachable`, then those the fleet packages register."""
    gates = [HealthGate("reachable", lambda runner, _, batch: reachable(runner, batch)),
             *plugins.registered("GATES")]  # fmt: skip
    return {gate.name: gate for gate in gates}


def check_declared(plays: Sequence[Play]) -> None:
    """The gates each play names exist, and have something to check in it (InputError
    at the gate's line otherwise): when the playbook loads, before anything runs."""
    known = named()
    for play in plays:
        for gate in (g for g in play.health_gates if g.kind != COMMAND):
            found = known.get(gate.kind)
            if found is None:
                kinds = ", ".join([*known, COMMAND])
                raise InputError(f"unknown health gate {gate.kind!r}: a gate is one of {kinds}",
                                 gate.where, play.context())  # fmt: skip
            if found.module and not any(t.module == found.module for t in play.tasks):
                raise InputError(
                    f"health gate {gate.kind}: this play declares no {found.module} task, "
                    "so the gate has nothing to check",
                    gate.where,
                    play.context(),
                )


async def check(runner: Runner, plan: PlayPlan, batch: list[str]) -> tuple[Gate, Problems] | None:
    """The first gate of `plan`'s play that fails on `batch`, with its problems."""
    known = named()
    for number, gate in enumerate(plan.play.health_gates):
        if gate.kind == COMMAND:
            position = [g for g in plan.play.health_gates[:number] if g.kind == COMMAND]
            commands = {h: plan.gate_commands[h][len(position)] for h in batch}
            problems = await command(runner, commands, gate.timeout)
        else:
            problems = await known[gate.kind].check(runner, plan, batch)
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
