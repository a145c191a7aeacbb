"""Rolling changes: a play with `serial`, `max_fail_percentage` or `health_gates` runs
batch by batch (vnetctl.playbook.rollout says what the keywords mean).

Each batch is the play run by the runner as it is, on the batch's hosts: one remote
process per host, on the run's one connection per host, commit confirmed per host when
the play asks for it (confirmed before the batch is over). When a batch is over:

1. every host of it that took part failed or was unreachable: the rollout stops;
2. more of its hosts FAILED than `max_fail_percentage` allows: the rollout stops;
3. its health gates (vnetctl.fleet.gates) run, in order (not in check mode: nothing
   changed); the first that fails stops the rollout, and each host of the batch it
   failed on gets a failed line saying why.

A stopped rollout starts nothing more: not the play's later batches, not later plays.
Each host left untouched gets one `not started` line naming the batch and the reason,
and the console says it once (exit code 2: a host failed, or a gate failed on it).
Plays without these keywords run as before: all their hosts at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from vnetctl.fleet import gates
from vnetctl.playbook.render import PlayPlan
from vnetctl.playbook.rollout import batches, over_budget
from vnetctl.runner.results import RunResult, Status, TaskResult
from vnetctl.runner.runner import Runner

FAILED = (Status.FAILED, Status.UNKNOWN)


def _event(runner: Runner, name: str, *args) -> None:
    """An event only rollout-aware reporters hear (the console)."""
    method = getattr(runner.events, name, None)
    if method is not None:
        method(*args)


def part_of(plan: PlayPlan, hosts: list[str]) -> PlayPlan:
    return dataclasses.replace(
        plan,
        hosts=hosts,
        tasks={h: plan.tasks.get(h, []) for h in hosts},
        gate_commands={h: plan.gate_commands.get(h, []) for h in hosts},
    )


async def run_in_batches(runner: Runner, plans: Sequence[PlayPlan]) -> RunResult:
    """Run `plans` (expanded already) in order, rolling plays out batch by batch."""
    runner.result.hosts = list(
        dict.fromkeys([*runner.result.hosts, *(h for p in plans for h in p.hosts)])
    )
    for position, plan in enumerate(plans):
        if not plan.play.rolls_out:
            await runner.run_plays([plan])
            continue
        stopped = await _roll(runner, plan)
        if stopped is not None:
            reason, untouched = stopped
            later = [(p, h) for p in plans[position + 1 :] for h in p.hosts]
            _not_started(runner, [(plan, h) for h in untouched] + later, reason)
            _event(runner, "rollout_stopped", reason, untouched)
            break
    runner.result.interrupted = runner.stop.requested
    return runner.result


async def _roll(runner: Runner, plan: PlayPlan) -> tuple[str, list[str]] | None:
    """The play batch by batch; (why it stopped, hosts left untouched) or None."""
    play = plan.play
    cut = batches(plan.hosts, play.serial)
    for number, hosts in enumerate(cut, start=1):
        where = f"batch {number} of {len(cut)} of play '{play.display_name}'"
        rest = [h for later in cut[number:] for h in later]
        out_before = runner.out
        seen = len(runner.result.results)
        if not runner.stop.requested:
            _event(runner, "batch_started", play.display_name, number, len(cut), hosts)
        await runner.run_plays([part_of(plan, hosts)])
        if runner.stop.requested:
            continue  # the runner reports every later host's tasks as not started
        part = [h for h in hosts if h not in out_before]
        results = runner.result.results[seen:]
        lost = {h for h in part if h in runner.result.unreachable}
        failed = {r.host for r in results if r.status in FAILED and r.host in part} - lost
        if part and set(part) <= failed | lost:
            return f"every host of {where} failed or was unreachable", rest
        if over_budget(len(failed), len(hosts), play.max_fail_percentage):
            return (
                f"{len(failed)} of {len(hosts)} hosts of {where} failed, more than "
                f"max_fail_percentage {play.max_fail_percentage:g}%",
                rest,
            )
        live = [h for h in part if h not in failed | lost]
        if not play.health_gates or not live:
            continue
        if runner.options.check:
            _event(runner, "gates_skipped", where)
            continue
        verdict = await gates.check(runner, plan, live)
        if runner.stop.requested:
            continue
        if verdict is None:
            _event(runner, "gates_passed", where, [g.label for g in play.health_gates])
            continue
        gate, problems = verdict
        for host, found in problems.items():
            runner.report(TaskResult(host, play.display_name, -1, f"(health gate {gate.kind})",
                                     "-", Status.FAILED, "; ".join(found)))  # fmt: skip
        shown = ", ".join(sorted(problems))
        return f"health gate {gate.label} failed after {where} on {shown}", rest
    return None


def _not_started(runner: Runner, pairs: list[tuple[PlayPlan, str]], reason: str) -> None:
    for plan, host in pairs:
        runner.report(TaskResult(host, plan.play.display_name, -1, "(rollout)", "-",
                                 Status.NOT_STARTED, f"not started: the rollout stopped: "
                                 f"{reason}"))  # fmt: skip
