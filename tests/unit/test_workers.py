"""`--workers`: a run spread over worker processes (vnetctl.fleet.workers) reports as
one process does: the same results, one play header per play, the same recap counts and
exit code; a stop request stops every worker's hosts; a worker that dies fails its
hosts (the rest go on) and never hangs the run. Fake hosts (tests/unit/worker_fakes.py)."""

from __future__ import annotations

import os
import signal
import threading
from types import SimpleNamespace

import pytest

from tests.unit import worker_fakes
from tests.unit.test_runner import Recorder, run, specs_for
from tests.unit.test_runner import play as fake_play
from vnetctl.catalog import Catalog
from vnetctl.fleet.workers import AUTO, parse_workers, worker_count
from vnetctl.fleet.workers.parent import (
    WORKER_LABEL,
    Workers,
    forks_of,
    settle_threads,
    share,
    threads,
)
from vnetctl.playbook.render import PlayPlan
from vnetctl.runner.control import RunOptions
from vnetctl.runner.results import ExitCode, Status
from vnetctl.transport import registry

HOSTS = [f"h{i}" for i in range(1, 7)]


def play(name, hosts, n_tasks):
    fake = fake_play(name, hosts, n_tasks)
    return PlayPlan(fake.play, fake.hosts, fake.tasks)


@pytest.fixture(autouse=True)
def fake_transport(monkeypatch):
    monkeypatch.setitem(registry.TRANSPORTS, worker_fakes.NAME, worker_fakes.PATH)
    worker_fakes.BEHAVIOURS.clear()
    yield
    worker_fakes.BEHAVIOURS.clear()


def context(hosts, **options):
    specs = specs_for(hosts)
    options = RunOptions(transport=worker_fakes.NAME, **options)
    pick = lambda names: {h: specs[h] for h in names}  # noqa: E731
    return SimpleNamespace(catalog=Catalog(), options=options, specs=pick)


def in_workers(plans, count, behaviours, events=None, **options):
    worker_fakes.BEHAVIOURS.update(behaviours)
    hosts = list(dict.fromkeys(h for p in plans for h in p.hosts))
    workers = Workers(context(hosts, **options), plans, count, events or Recorder())
    return workers, workers.execute()


def summary(result):
    """What must not depend on the number of processes: each host's results in order."""
    rows = sorted((r.host, r.play, r.index, r.status.value, r.msg) for r in result.results)
    return rows, {h: dict(c) for h, c in result.stats().items()}, result.exit_code()


def test_two_workers_report_what_one_process_reports():
    plans = lambda: [play("a", HOSTS, 3), play("b", HOSTS, 2)]  # noqa: E731
    behaviours = {"h2": "fail", "h5": "down"}
    one, _, _ = run(plans(), behaviours)
    events = Recorder()
    _, merged = in_workers(plans(), 2, behaviours, events)
    assert summary(merged) == summary(one)
    assert merged.exit_code() == ExitCode.HOST_FAILED
    assert merged.unreachable == one.unreachable == {"h5": "connection refused"}
    assert merged.hosts == HOSTS
    # one header per play, for the whole fleet: h2 failed and h5 was lost in play a
    assert events.plays == [("a", HOSTS), ("b", ["h1", "h3", "h4", "h6"])]
    assert len(events.results) == len(merged.results)


def test_unreachable_alone_is_exit_3_across_workers():
    _, merged = in_workers([play("a", HOSTS, 1)], 3, {"h6": "down"})
    assert merged.exit_code() == ExitCode.HOST_UNREACHABLE
    assert set(merged.unreachable) == {"h6"}


class Trigger(Recorder):
    """Does `act` once, when the first result of a host in `hosts` arrives."""

    def __init__(self, hosts, act):
        super().__init__()
        self.hosts, self.act, self.done = set(hosts), act, False

    def task_done(self, result):
        super().task_done(result)
        if not self.done and result.host in self.hosts:
            self.done = True
            self.act()


def test_sigint_stops_every_workers_hosts_as_one_process_does():
    slow = dict.fromkeys(HOSTS, "slow")
    events = Trigger(HOSTS, lambda: os.kill(os.getpid(), signal.SIGINT))
    _, merged = in_workers([play("a", HOSTS, 40), play("b", HOSTS, 1)], 2, slow, events)
    assert merged.interrupted and merged.exit_code() == ExitCode.INTERRUPTED
    for host, stats in merged.stats().items():
        assert 1 <= stats["changed"] < 40, host  # each ended its task in flight
        assert stats["changed"] + stats["not_started"] == 41, host
        assert "unknown" not in stats, host
    assert len(events.plays) == 1  # play b began nowhere: no header


def test_a_worker_killed_mid_play_fails_its_hosts_and_the_others_finish():
    slow = dict.fromkeys(HOSTS, "slow")
    holder = {}
    second = share(HOSTS, 2)[1]

    def kill():
        os.kill(holder["workers"].workers[1].process.pid, signal.SIGKILL)

    events = Trigger(second, kill)
    worker_fakes.BEHAVIOURS.update(slow)
    plans = [play("a", HOSTS, 20), play("b", HOSTS, 1)]
    workers = Workers(context(HOSTS), plans, 2, events)
    holder["workers"] = workers
    merged = workers.execute()
    assert merged.exit_code() == ExitCode.HOST_FAILED and not merged.interrupted
    stats = merged.stats()
    for host in HOSTS:
        if host in second:
            lines = [r for r in merged.results if r.host == host and r.index == -1]
            assert [(r.task, r.status) for r in lines] == [(WORKER_LABEL, Status.FAILED)]
            assert "worker process 2 was killed by SIGKILL" in lines[0].msg
            assert stats[host]["changed"] + stats[host]["unknown"] == 20, host
            assert stats[host]["unknown"] >= 1
        else:
            assert stats[host] == {"changed": 21}, host
    assert [p[0] for p in events.plays] == ["a", "b"]
    assert events.plays[1][1] == share(HOSTS, 2)[0]


def test_workers_auto_only_above_the_measured_size(monkeypatch):
    monkeypatch.setattr("vnetctl.fleet.workers.cores", lambda: 4)
    assert parse_workers("auto") == AUTO and parse_workers("3") == 3
    assert worker_count(AUTO, 500) == 1  # measured: no gain up to 500 hosts
    assert worker_count(AUTO, 1001) == 4
    assert worker_count(2, 1) == 1  # never more workers than hosts
    assert share(["a", "b", "c"], 2) == [["a", "c"], ["b"]]


def test_forks_is_the_whole_runs_bound_shared_by_the_workers():
    assert [forks_of(50, n, 1000) for n in (500, 500)] == [25, 25]
    assert [forks_of(5, n, 6) for n in (3, 3)] == [3, 3]  # rounded up: never 0
    assert forks_of(1, 1, 1000) == 1


def test_no_fork_while_another_thread_runs():
    """A thread still ending when the workers are forked can leave a lock (OpenSSL's)
    copied locked in them: the fork waits for this process to be one thread."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        with pytest.raises(RuntimeError, match="2 threads still run"):
            settle_threads(timeout=0.2)
        threading.Timer(0.1, release.set).start()
        settle_threads(timeout=5)  # returns once both threads are gone
        assert threads() == 1
    finally:
        release.set()
        thread.join()
