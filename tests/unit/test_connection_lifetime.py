"""When the runner closes a host's connection (fake transport of test_runner.py): in the
run's last phase, as soon as no later play will use it (its last play is over, or it
failed or was unreachable), in its fork slot, so a one-play run over many hosts holds
at most --forks connections; never while a later play, phase, batch or held
confirmation still needs it."""

from __future__ import annotations

import asyncio
from multiprocessing import Pipe

from test_rollout import Transport as RolloutTransport
from test_rollout import plan as rolling_plan
from test_runner import FakeConnection, FakeTransport, Recorder, play, run, specs_for

from vnetctl.catalog import Catalog
from vnetctl.fleet.rollout import run_in_batches
from vnetctl.fleet.workers import child
from vnetctl.playbook.model import Gate
from vnetctl.runner.control import RunOptions
from vnetctl.runner.pool import ConnectionPool
from vnetctl.runner.results import ExitCode
from vnetctl.runner.runner import Runner


def execs(log, host) -> list[int]:
    return [i for i, e in enumerate(log) if e == ("exec", host)]


def closes(log, host) -> list[int]:
    return [i for i, e in enumerate(log) if e == ("close", host)]


def test_a_host_only_in_the_first_play_is_closed_before_the_second_play_starts():
    _, _, log = run([play("a", ["h1", "h2"], 2), play("b", ["h2"], 2)], {})
    (close_h1,) = closes(log, "h1")
    assert close_h1 < execs(log, "h2")[1]


def test_a_connection_is_closed_after_its_hosts_last_play_and_not_before():
    plans = [play("a", ["h1", "h2"], 1), play("b", ["h3"], 1), play("c", ["h1"], 1)]
    _, _, log = run(plans, {})
    (close_h1,) = closes(log, "h1")
    assert log.count(("connect", "h1")) == 1  # kept through play b, where it has no part
    assert close_h1 > execs(log, "h1")[-1]
    (close_h2,) = closes(log, "h2")
    assert close_h2 < execs(log, "h3")[0]  # h2's last play was a


def test_a_failed_host_is_closed_at_once_and_out_of_later_plays():
    _, _, log = run([play("a", ["h1", "h2"], 2), play("b", ["h1", "h2"], 2)], {"h1": "fail"})
    (close_h1,) = closes(log, "h1")
    assert close_h1 < execs(log, "h2")[1]
    assert len(execs(log, "h1")) == 1


def test_a_host_lost_mid_play_is_closed_at_once():
    _, _, log = run([play("a", ["h1", "h2"], 3), play("b", ["h1", "h2"], 2)], {"h1": "lost"})
    (close_h1,) = closes(log, "h1")
    assert close_h1 < execs(log, "h2")[1]


def test_one_play_over_many_hosts_holds_at_most_forks_connections():
    opened, peak = 0, 0

    class Counted(FakeConnection):
        async def close(self):
            nonlocal opened
            await asyncio.sleep(0)  # a close takes a turn of the loop, as a real one does
            opened -= 1

    class CountingTransport(FakeTransport):
        async def connect(self, target, options):
            nonlocal opened, peak
            opened += 1
            peak = max(peak, opened)
            return Counted(target.name, "ok", self.log)

    hosts = [f"h{i}" for i in range(200)]
    specs = specs_for(hosts)
    options = RunOptions(forks=7)
    pool = ConnectionPool(specs, options, transports={"asyncssh": CountingTransport({}, [])})
    runner = Runner(Catalog(), specs, options, Recorder(), pool)
    result = asyncio.run(runner.run([play("a", hosts, 3)]))
    assert result.exit_code() == ExitCode.SUCCESS and result.stats()["h199"]["changed"] == 3
    assert peak == 7 and opened == 0


def test_a_further_phase_keeps_every_connection_and_the_last_closes_them():
    """run_plays without `then` (mesh check, trace --probe, a health gate's probes) may
    be followed by another phase on the same connections: nothing is closed there. Facts
    read before the plays are read on the connections the plays use; a host read but in
    no play is closed before they start."""
    hosts = ["h1", "h2", "h3"]
    specs = specs_for(hosts)
    log = []
    options = RunOptions()
    pool = ConnectionPool(specs, options, transports={"asyncssh": FakeTransport({}, log)})
    runner = Runner(Catalog(), specs, options, Recorder(), pool)

    async def phases():
        await runner.run_plays([play("first phase", ["h1", "h2"], 1)])
        assert not [e for e in log if e[0] == "close"]

        async def facts(runner, plans):
            await runner.gather_facts(hosts)
            return plans

        return await runner.run([play("a", ["h1", "h2"], 1), play("b", ["h2"], 1)], facts)

    assert asyncio.run(phases()).exit_code() == ExitCode.SUCCESS
    assert [log.count(("connect", h)) for h in hosts] == [1, 1, 1]
    (close_h3,) = closes(log, "h3")
    assert close_h3 < execs(log, "h1")[-1]
    assert closes(log, "h1")[0] < execs(log, "h2")[-1]


def rollout(plans, **options):
    hosts = list(dict.fromkeys(h for p in plans for h in p.hosts))
    specs = specs_for(hosts)
    log, options = [], RunOptions(**options)
    pool = ConnectionPool(specs, options, transports={"asyncssh": RolloutTransport({}, log)})
    runner = Runner(Catalog(), specs, options, Recorder(), pool)

    async def batches(plans):
        return await run_in_batches(runner, plans, last=True)

    return asyncio.run(runner.run(plans, play=batches)), log


def closed_before(log, host, position) -> int:
    return len([i for i in closes(log, host) if i < position])


def test_a_rolling_batch_keeps_its_connections_through_gates_and_held_confirmations():
    """Commit confirmed with health gates: a batch's hosts are confirmed (over new
    connections) only after the gates, which run on the play's connections; then those
    are closed, before the next batch, unless a later play names the host."""
    hosts = ["h1", "h2", "h3"]
    gates = [Gate("command", command="check", timeout=5)]
    commands = {h: ["check"] for h in hosts}
    roll = rolling_plan("roll", hosts, serial=[1], gates=gates, commands=commands, confirm=60)
    result, log = rollout([roll, rolling_plan("after", ["h3"])])
    assert result.exit_code() == ExitCode.SUCCESS
    for host, following in (("h1", "h2"), ("h2", "h3")):
        gate = next(i for i, e in enumerate(log) if e[:2] == ("gate", host))
        assert log[:gate].count(("connect", host)) == 1 and not closed_before(log, host, gate)
        assert log.index(("confirm", host)) < execs(log, following)[0]
        # the confirmation's own connection, and the play's
        assert closed_before(log, host, execs(log, following)[0]) == 2
    assert (
        log.count(("connect", "h3")) == 2
    )  # the play's, kept for play 'after'; the confirmation's
    assert closed_before(log, "h3", execs(log, "h3")[-1]) == 1


def test_a_rolling_batch_without_a_timer_keeps_its_connections_through_its_gates():
    hosts = ["h1", "h2"]
    gates = [Gate("command", command="check", timeout=5)]
    roll = rolling_plan(
        "roll", hosts, serial=[1], gates=gates, commands={h: ["check"] for h in hosts}
    )
    result, log = rollout([roll])
    assert result.exit_code() == ExitCode.SUCCESS
    gate = next(i for i, e in enumerate(log) if e[:2] == ("gate", "h1"))
    assert log.count(("connect", "h1")) == 1 and not closed_before(log, "h1", gate)
    assert closed_before(log, "h1", execs(log, "h2")[0]) == 1


def test_a_worker_closes_a_host_after_its_last_play_of_the_run():
    """A worker process runs its plays one by one as the parent says go: each is its
    last phase with the later plays after it (vnetctl.fleet.workers.child)."""
    hosts = ["h1", "h2"]
    specs = specs_for(hosts)
    log = []
    options = RunOptions()
    pool = ConnectionPool(specs, options, transports={"asyncssh": FakeTransport({}, log)})
    runner = child.WorkerRunner(Catalog(), specs, options, Recorder(), pool)
    plans = [play("a", hosts, 1), play("b", ["h2"], 1), play("c", ["h2"], 1)]
    ours, theirs = Pipe()
    with ours, theirs:
        runner.parent = child.Parent(ours)
        for k in range(len(plans)):
            theirs.send((child.GO, k))
        asyncio.run(child._work(ours, runner.parent, runner, plans))
    (close_h1,) = closes(log, "h1")
    assert close_h1 < execs(log, "h2")[1]
    assert log.count(("connect", "h2")) == 1 and closes(log, "h2")[0] > execs(log, "h2")[-1]
