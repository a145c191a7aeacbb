"""The runner with a fake transport: scheduling, failure isolation, exit codes.

The real transports are tested against the lab (tests/integration)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from types import SimpleNamespace

from vnetctl.catalog import Catalog
from vnetctl.runner.results import ExitCode, Status
from vnetctl.runner.runner import ConnectionPool, Runner, RunOptions
from vnetctl.transport.base import RemoteFailure, Unreachable


def task(index, module="link"):
    return SimpleNamespace(index=index, name=f"task {index}", module=module, args={"name": "x"})


def play(name, hosts, n_tasks):
    return SimpleNamespace(
        play=SimpleNamespace(display_name=name),
        hosts=hosts,
        tasks={h: [task(i) for i in range(n_tasks)] for h in hosts},
    )


def specs_for(hosts):
    """Connection specs as the inventory would give them (only what the runner reads)."""
    return {
        h: SimpleNamespace(
            address=h,
            port=None,
            user=None,
            key_file=None,
            known_hosts=None,
            connect_timeout=1,
            transport=None,
            python="python3",
            become=False,
            become_user="root",
        )
        for h in hosts
    }


class FakeConnection:
    def __init__(self, host, behaviour, log):
        self.host, self.behaviour, self.log = host, behaviour, log

    async def stream(self, command, stdin):
        self.log.append(("exec", self.host))
        tasks = json.loads(stdin.splitlines()[1])["tasks"]
        for t in tasks:
            if self.behaviour == "crash":
                raise RemoteFailure(127, "python3: not found")
            yield "\n"  # blank lines are not protocol errors
            failed = self.behaviour == "fail" and t["index"] == 0
            skipped = self.behaviour == "fail" and t["index"] > 0
            yield (
                json.dumps(
                    {
                        "index": t["index"],
                        "result": {
                            "changed": not failed and not skipped,
                            "failed": failed,
                            "skipped": skipped,
                            "msg": "boom" if failed else "",
                        },
                    }
                )
                + "\n"
            )
            await asyncio.sleep(0)
        yield json.dumps({"done": True}) + "\n"

    async def close(self):
        self.log.append(("close", self.host))


class FakeTransport:
    def __init__(self, behaviours, log):
        self.behaviours, self.log = behaviours, log

    async def connect(self, target, options):
        self.log.append(("connect", target.name))
        if self.behaviours.get(target.name) == "down":
            raise Unreachable("connection refused")
        return FakeConnection(target.name, self.behaviours.get(target.name, "ok"), self.log)


class Recorder:
    def __init__(self):
        self.plays, self.results = [], []

    def play_started(self, name, hosts, task_count):
        self.plays.append((name, list(hosts)))

    def task_done(self, result):
        self.results.append(result)


def run(plans, behaviours, forks=50):
    hosts = {h for p in plans for h in p.hosts}
    specs = specs_for(hosts)
    log, events = [], Recorder()
    options = RunOptions(forks=forks)
    pool = ConnectionPool(specs, options, transports={"asyncssh": FakeTransport(behaviours, log)})
    result = asyncio.run(Runner(Catalog(), specs, options, events, pool).run(plans))
    return result, events, log


def test_one_connection_per_host_and_one_process_per_play():
    result, _, log = run([play("a", ["h1", "h2"], 3), play("b", ["h1", "h2"], 2)], {})
    assert sorted(e for e in log if e[0] == "connect") == [("connect", "h1"), ("connect", "h2")]
    assert sum(1 for e in log if e[0] == "exec") == 4
    assert sorted(e for e in log if e[0] == "close") == [("close", "h1"), ("close", "h2")]
    assert result.exit_code() == ExitCode.SUCCESS
    assert result.stats()["h1"]["changed"] == 5


def test_failed_host_does_not_stop_others_and_skips_later_plays():
    result, events, _ = run(
        [play("a", ["h1", "h2"], 3), play("b", ["h1", "h2"], 1)], {"h1": "fail"}
    )
    statuses = [(r.host, r.play, r.status) for r in result.results if r.host == "h1"]
    assert statuses == [
        ("h1", "a", Status.FAILED),
        ("h1", "a", Status.SKIPPED),
        ("h1", "a", Status.SKIPPED),
    ]
    assert result.stats()["h2"]["changed"] == 4
    assert events.plays[1] == ("b", ["h2"])
    assert result.exit_code() == ExitCode.HOST_FAILED


def test_unreachable_host_reported_for_every_task_while_others_succeed():
    result, _, _ = run([play("a", ["h1", "h2", "h3"], 2)], {"h2": "down"})
    assert result.unreachable == {"h2": "connection refused"}
    assert [r.status for r in result.results if r.host == "h2"] == [Status.UNREACHABLE] * 2
    assert result.stats()["h3"]["changed"] == 2
    assert result.exit_code() == ExitCode.HOST_UNREACHABLE


def test_remote_process_failure_fails_that_hosts_tasks_with_its_stderr():
    result, _, _ = run([play("a", ["h1", "h2"], 2)], {"h1": "crash"})
    failed = [r for r in result.results if r.host == "h1"]
    assert [r.status for r in failed] == [Status.FAILED] * 2
    assert "python3: not found" in failed[0].msg


def test_forks_bounds_hosts_in_flight():
    in_flight, peak = 0, 0

    class Counting(FakeConnection):
        async def stream(self, command, stdin):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            async for line in super().stream(command, stdin):
                yield line
            in_flight -= 1

    class CountingTransport(FakeTransport):
        async def connect(self, target, options):
            return Counting(target.name, "ok", self.log)

    hosts = [f"h{i}" for i in range(12)]
    specs = specs_for(hosts)
    options = RunOptions(forks=3)
    pool = ConnectionPool(specs, options, transports={"asyncssh": CountingTransport({}, [])})
    asyncio.run(Runner(Catalog(), specs, options, Recorder(), pool).run([play("a", hosts, 2)]))
    assert peak == 3


def test_failure_after_every_task_reported_is_not_silent():
    class LateFailure(FakeConnection):
        async def stream(self, command, stdin):
            async for line in super().stream(command, stdin):
                yield line
            raise RemoteFailure(1, "killed by signal")

    class LateTransport(FakeTransport):
        async def connect(self, target, options):
            return LateFailure(target.name, "ok", self.log)

    specs = specs_for(["h1"])
    options = RunOptions()
    pool = ConnectionPool(specs, options, transports={"asyncssh": LateTransport({}, [])})
    result = asyncio.run(
        Runner(Catalog(), specs, options, Recorder(), pool).run(
            [play("a", ["h1"], 1), play("b", ["h1"], 1)]
        )
    )
    assert [r.status for r in result.results] == [Status.CHANGED, Status.FAILED]
    assert "killed by signal" in result.results[1].msg
    assert result.exit_code() == ExitCode.HOST_FAILED


def test_ssh_libraries_are_imported_only_by_a_run_that_uses_them():
    """`--help`, bad input and asyncssh runs do not pay for paramiko's import (and
    the CLI for neither library's) until a connection is opened."""
    probe = (
        "import sys; import vnetctl.cli.main; before = {m for m in ('asyncssh', 'paramiko')"
        " if m in sys.modules}; from vnetctl.transport.registry import load_transport;"
        " t = load_transport('asyncssh'); print(sorted(before), type(t).__name__,"
        " 'paramiko' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["[]", "AsyncsshTransport", "False"], done.stderr
