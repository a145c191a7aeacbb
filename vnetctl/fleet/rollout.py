"""Rolling changes: a play with `serial`, `max_fail_percentage` or `health_gates` runs
batch by batch (vnetctl.playbook.serial says what the keywords mean).

Each batch is the play run by the runner as it is, on the batch's hosts: one remote
process per host, on the run's one connection per host (kept through the batch's gates
and confirmations; with `last`, closed after them if no later batch or play names the
host). Under commit confirmed
(`confirm_timeout`, --confirm-timeout) a host of a batch with health gates is confirmed
only once the gates passed: each host keeps its rollback timer armed meanwhile (the
timer must cover the play and the gates). When a batch is over:

1. every host of it that took part failed or was unreachable: the rollout stops;
2. more of its hosts FAILED than `max_fail_percentage` allows: the rollout stops;
3. its health gates (vnetctl.fleet.gates) run, in order (not in check mode: nothing
   changed); the first that fails stops the rollout, each host of the batch it failed
   on gets a failed line saying why, and every host of the batch awaiting confirmation
   is asked to roll its play back now (its timer does it if it cannot be reached).

The batch's other hosts are then confirmed. A stopped rollout starts nothing more: not
the play's later batches, not later plays. It is said once (RunResult.rollout_stopped:
why, the hosts rolled back, the hosts whose changes stay, with how to undo them, and
the hosts never started, each with one `not started` line); exit code 2. Plays without
these keywords run as before: all their hosts at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from vnetctl.fleet import gates
from vnetctl.playbook.render import PlayPlan
from vnetctl.playbook.serial import batches, over_budget
from vnetctl.runner.results import ROLLOUT_LABEL, RunResult, Status, TaskResult
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


@dataclasses.dataclass
class Stop:
    """Why a rollout stopped, and what became of the stopped batch's hosts."""

    reason: str
    untouched: list[str]
    gate: bool = False  # a health gate failed (else: the batch's failures)
    rolled_back: list[str] = dataclasses.field(default_factory=list)
    changed: list[str] = dataclasses.field(default_factory=list)  # and left so


async def run_in_batches(runner: Runner, plans: Sequence[PlayPlan], last: bool = False
                         ) -> RunResult:  # fmt: skip
    """Run `plans` (expanded already) in order, rolling plays out batch by batch.
    `last`: they are the run's last phase (a host's connection is closed once nothing
    later names it; see vnetctl.runner.runner)."""
    runner.result.hosts = list(
        dict.fromkeys([*runner.result.hosts, *(h for p in plans for h in p.hosts)])
    )
    for position, plan in enumerate(plans):
        then = plans[position + 1 :] if last else None  # the plays after, if ours are last
        if not plan.play.rolls_out:
            await runner.run_plays([plan], then=then)
            continue
        stop = await _roll(runner, plan, then)
        if stop is not None:
            later = [(p, h) for p in plans[position + 1 :] for h in p.hosts]
            _not_started(runner, [(plan, h) for h in stop.untouched] + later)
            runner.result.rollout_stopped = {
                "reason": stop.reason, "gate": stop.gate, "rolled_back": stop.rolled_back,
                "changed": stop.changed, "not_started": list(dict.fromkeys(
                    [*stop.untouched, *(h for _, h in later)])),
            }  # fmt: skip
            _event(runner, "rollout_stopped", runner.result.rollout_stopped)
            break
    runner.result.interrupted = runner.stop.requested
    return runner.result


async def _roll(runner: Runner, plan: PlayPlan, later: Sequence[PlayPlan] | None
                ) -> Stop | None:  # fmt: skip
    """The play batch by batch; why it stopped, or None. `later`: the plays after this
    one, when they are the run's last phase."""
    play = plan.play
    cut = batches(plan.hosts, play.serial)
    for number, hosts in enumerate(cut, start=1):
        where = f"batch {number} of {len(cut)} of play '{play.display_name}'"
        rest = [h for later in cut[number:] for h in later]
        out_before = runner.out
        seen = len(runner.result.results)
        if not runner.stop.requested:
            _event(runner, "batch_started", play.display_name, number, len(cut), hosts)
        runner.hold_confirmations = bool(play.health_gates) and not runner.options.check
        try:
            await runner.run_plays([part_of(plan, hosts)])
        finally:
            runner.hold_confirmations = False
        part = [h for h in hosts if h not in out_before]
        results = runner.result.results[seen:]
        reason = None if runner.stop.requested else _over(runner, play, part, results, where)
        gate = None
        if reason is None and not runner.stop.requested:
            gate = await _gated(runner, plan, part, results, where)
        # a failed gate: the batch's hosts awaiting confirmation roll back now
        rolled = await runner.release(roll_back=gate)
        if later is not None:  # its gates and confirmations are over
            await runner.let_go(hosts, [part_of(plan, rest), *later])
        if runner.stop.requested:
            continue  # the runner reports every later host's tasks as not started
        reason = reason or gate or _over(runner, play, part, runner.result.results[seen:], where)
        if reason is not None:
            changed = {r.host for r in runner.result.results[seen:] if r.status is Status.CHANGED}
            stays = [h for h in part if h in changed and h not in rolled]
            return Stop(reason, rest, gate is not None, [h for h in part if h in rolled], stays)
    return None


def _over(runner: Runner, play, part: list[str], results: list[TaskResult], where: str):
    """Why the batch's failures stop the rollout, or None."""
    lost = {h for h in part if h in runner.result.unreachable}
    failed = {r.host for r in results if r.status in FAILED and r.host in part} - lost
    if part and set(part) <= failed | lost:
        return f"every host of {where} failed or was unreachable"
    if over_budget(len(failed), len(part), play.max_fail_percentage):
        return (
            f"{len(failed)} of {len(part)} hosts of {where} failed, more than "
            f"max_fail_percentage {play.max_fail_percentage:g}%"
        )
    return None


async def _gated(
    runner: Runner, plan: PlayPlan, part: list[str], results: list[TaskResult], where: str
) -> str | None:
    """The batch's health gates: why they stop the rollout, or None."""
    play = plan.play
    failed = {r.host for r in results if r.status in FAILED}
    live = [h for h in part if h not in failed and h not in runner.result.unreachable]
    if not play.health_gates or not live:
        return None
    if runner.options.check:
        _event(runner, "gates_skipped", where)
        return None
    options = runner.options  # the batch's locks are held by its watchdogs, for this run
    runner.options = dataclasses.replace(options, borrowed_locks=frozenset(runner.held))
    try:
        verdict = await gates.check(runner, plan, live)
    finally:
        runner.options = options
    if runner.stop.requested:
        return None
    if verdict is None:
        _event(runner, "gates_passed", where, [g.label for g in play.health_gates])
        return None
    gate, problems = verdict
    for host, found in problems.items():
        runner.report(TaskResult(host, play.display_name, -1, f"(health gate {gate.kind})",
                                 "-", Status.FAILED, "; ".join(found)))  # fmt: skip
    return f"health gate {gate.label} failed after {where} on {', '.join(sorted(problems))}"


def _not_started(runner: Runner, pairs: list[tuple[PlayPlan, str]]) -> None:
    for plan, host in pairs:  # the reason is said once, in RunResult.rollout_stopped
        msg = "not started: the rollout stopped"
        runner.report(TaskResult(host, plan.play.display_name, -1, ROLLOUT_LABEL, "-",
                                 Status.NOT_STARTED, msg))  # fmt: skip
