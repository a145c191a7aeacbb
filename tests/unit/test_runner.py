"""The runner with a fake transport: scheduling, failure isolation, exit codes.

The real transports are tested against the lab (tests/integration)."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import subprocess
import sys
from types import SimpleNamespace

from vnetctl.catalog import Catalog
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.runner.control import RunOptions
from vnetctl.runner.host_play import ACK_WINDOW
from vnetctl.runner.payload import unpack
from vnetctl.runner.pool import ConnectionPool
from vnetctl.runner.results import ExitCode, Status
from vnetctl.runner.runner import Runner
from vnetctl.transport.base import ConnectionLost, LineByLine, Unreachable


def task(index, module="link"):
    return SimpleNamespace(index=index, name=f"task {index}", module=module, args={"name": "x"})


def play(name, hosts, n_tasks):
    return SimpleNamespace(
        play=SimpleNamespace(display_name=name),
        hosts=hosts,
        tasks={h: [task(i) for i in range(n_tasks)] for h in hosts},
    )


def specs_for(hosts):
    return {h: ConnectionSpec(h, address=h, python="python3", connect_timeout=1) for h in hosts}


class FakeProcess(LineByLine):
    """The host side of the protocol (vnetctl/hostside/boot.py), in memory:
    'ok' changes every task, 'fail' fails the first, 'crash' exits 127 before any,
    'exited' exits 127 before its input was written (the write finds the channel closed),
    'lost' loses the connection during task 1, 'hang' never finishes task 0,
    'late' exits 1 after reporting everything, 'burst' reports every task before the
    controller reads any (its channel closed when it acknowledges); 'cut' is a cable
    cut after the start of task 1: the controller hears nothing more, and the host goes
    on (no EOF reaches it) as far as the controller's acknowledgements let it."""

    def __init__(self, host, behaviour, log):
        self.host, self.behaviour, self.log = host, behaviour, log
        self.lines = asyncio.Queue()
        self.stdin_closed = False
        self.status = 0
        self.stderr = ""
        self.acks, self.cut, self.started, self.finished = 0, False, [], False
        self.ack_writes: list[int] = []  # "+" per write the controller made
        log.append(("process", self))

    async def write(self, data):
        if self.behaviour == "exited":
            self.status, self.stderr = 127, "python3: not found"
            raise ConnectionLost("connection lost: Channel not open for sending")
        if set(data) == {"+"}:  # acknowledgements of start records
            self.ack_writes.append(len(data))
            if self.finished:  # the host's records outran the acknowledgements: gone
                raise ConnectionLost("connection lost: Channel not open for sending")
            self.acks += 0 if self.cut else len(data)
            return
        payload = unpack(data.splitlines()[1])
        asyncio.get_running_loop().create_task(self._host(payload["tasks"], payload["window"]))

    async def _host(self, tasks, window):
        put = self.lines.put_nowait
        if self.behaviour == "crash":
            self.status, self.stderr = 127, "python3: not found"
            put("")
            return
        for t in tasks:
            if self.stdin_closed:  # asked to stop: no new task
                put(json.dumps({"done": True, "stopped": True}) + "\n")
                put("")
                return
            while window and len(self.started) - self.acks >= window:
                if self.cut:
                    return  # no acknowledgement will come: the host stops (ACK_WAIT)
                await asyncio.sleep(0)
            self.started.append(t["index"])
            if self.cut:
                continue  # applied, its records lost in the cut
            put(json.dumps({"start": t["index"]}) + "\n")
            if self.behaviour == "cut" and t["index"] == 1:
                self.cut = True
                put(ConnectionLost("connection lost: Server not responding to keepalive"))
                continue
            if self.behaviour == "hang":
                return  # never a result, never EOF
            if self.behaviour == "lost" and t["index"] == 1:
                put(ConnectionLost("connection lost: reset by peer"))
                return
            put("\n")  # blank lines are not protocol errors
            failed = self.behaviour == "fail" and t["index"] == 0
            skipped = self.behaviour == "fail" and t["index"] > 0
            result = {"changed": not failed and not skipped, "failed": failed,
                      "skipped": skipped, "msg": "boom" if failed else ""}  # fmt: skip
            if skipped:
                result["skipped_after"] = 0
            put(json.dumps({"index": t["index"], "result": result}) + "\n")
            if self.behaviour != "burst":
                await asyncio.sleep(0)
        put(json.dumps({"done": True, "stopped": False}) + "\n")
        self.finished = True  # its channel closes: no acknowledgement can be written now
        if self.behaviour == "late":
            self.status, self.stderr = 1, "killed by signal"
        put("")

    def close_stdin(self):
        self.stdin_closed = True

    async def readline(self):
        item = await self.lines.get()
        if isinstance(item, Exception):
            raise item
        return item

    async def wait(self):
        return self.status, self.stderr

    async def terminate(self):
        self.log.append(("terminate", self.host))


class FakeConnection:
    def __init__(self, host, behaviour, log):
        self.host, self.behaviour, self.log = host, behaviour, log

    async def start(self, command):
        self.log.append(("exec", self.host))
        return FakeProcess(self.host, self.behaviour, self.log)

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

    def note(self, host, text):
        pass


def run(plans, behaviours, forks=50, **options):
    hosts = {h for p in plans for h in p.hosts}
    specs = specs_for(hosts)
    log, events = [], Recorder()
    options = RunOptions(forks=forks, **options)
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


def test_unreachable_host_counted_once_its_tasks_not_started_while_others_succeed():
    result, _, _ = run([play("a", ["h1", "h2", "h3"], 2)], {"h2": "down"})
    assert result.unreachable == {"h2": "connection refused"}
    h2 = [r.status for r in result.results if r.host == "h2"]
    assert h2 == [Status.UNREACHABLE, Status.NOT_STARTED, Status.NOT_STARTED]
    assert result.stats()["h3"]["changed"] == 2
    assert result.exit_code() == ExitCode.HOST_UNREACHABLE


def test_missing_interpreter_fails_the_host_saying_so():
    result, _, _ = run([play("a", ["h1", "h2"], 2)], {"h1": "crash"})
    h1 = [r for r in result.results if r.host == "h1"]
    assert [r.status for r in h1] == [Status.FAILED, Status.NOT_STARTED, Status.NOT_STARTED]
    assert "interpreter 'python3' was not found" in h1[0].msg
    assert "python3: not found" in h1[0].msg
    assert result.stats()["h2"]["changed"] == 2


def test_a_process_gone_before_its_input_was_written_is_judged_by_its_exit():
    """Under load the host's shell can report 127 before the payload is written: the
    write then finds the channel closed. That is the missing interpreter, not a lost host."""
    result, _, _ = run([play("a", ["h1", "h2"], 2)], {"h1": "exited"})
    h1 = [r for r in result.results if r.host == "h1"]
    assert [r.status for r in h1] == [Status.FAILED, Status.NOT_STARTED, Status.NOT_STARTED]
    assert "interpreter 'python3' was not found" in h1[0].msg
    assert result.unreachable == {}
    assert result.exit_code() == ExitCode.HOST_FAILED


def test_forks_bounds_hosts_in_flight():
    in_flight, peak = 0, 0

    class CountingProcess(FakeProcess):
        async def wait(self):
            nonlocal in_flight
            in_flight -= 1
            return await super().wait()

    class Counting(FakeConnection):
        async def start(self, command):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            return CountingProcess(self.host, "ok", self.log)

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
    result, _, _ = run([play("a", ["h1"], 1), play("b", ["h1"], 1)], {"h1": "late"})
    assert [r.status for r in result.results] == [Status.CHANGED, Status.FAILED]
    assert "killed by signal" in result.results[1].msg
    assert result.exit_code() == ExitCode.HOST_FAILED


def test_lost_connection_is_that_hosts_alone_with_the_task_it_was_in():
    result, _, _ = run([play("a", ["h1", "h2"], 3)], {"h1": "lost"})
    h1 = [(r.index, r.status) for r in result.results if r.host == "h1"]
    assert h1 == [(0, Status.CHANGED), (-1, Status.UNREACHABLE), (1, Status.UNKNOWN),
                  (2, Status.UNKNOWN)]  # fmt: skip
    assert "may have started it" in result.results[-1].msg  # within the window
    assert "in task 'task 1'" in result.unreachable["h1"]
    assert result.stats()["h2"]["changed"] == 3
    assert result.exit_code() == ExitCode.HOST_UNREACHABLE


def test_a_host_lost_mid_play_is_never_said_not_to_have_started_a_task_it_ran():
    """A cut cable brings no EOF: the host goes on. It starts a task only while fewer
    than ACK_WINDOW of its started tasks are unacknowledged, so what it may have run
    beyond the last start record received is `unknown`, and `not started` is true."""
    tasks = 40
    result, _, log = run([play("a", ["h1", "h2"], tasks)], {"h1": "cut"})
    host = next(p for kind, p in log if kind == "process" and p.host == "h1")
    status = {r.index: r.status for r in result.results if r.host == "h1" and r.index >= 0}
    assert host.started and len(status) == tasks
    assert [i for i in host.started if status[i] is Status.NOT_STARTED] == []
    assert status[1] is Status.UNKNOWN and status[0] is Status.CHANGED
    unknown = [i for i, s in status.items() if s is Status.UNKNOWN]
    assert unknown == list(range(1, 2 + ACK_WINDOW))  # the task in flight, then the window
    assert all(s is Status.NOT_STARTED for i, s in status.items() if i > 1 + ACK_WINDOW)
    assert result.stats()["h2"]["changed"] == tasks


def test_an_acknowledgement_the_ended_host_cannot_take_is_no_lost_contact():
    result, _, _ = run([play("a", ["h1"], 3)], {"h1": "burst"})
    assert [r.status for r in result.results] == [Status.CHANGED] * 3
    assert result.exit_code() == ExitCode.SUCCESS


def test_play_timeout_fails_the_host_names_the_task_and_ends_the_process():
    result, _, log = run([play("a", ["h1", "h2"], 2)], {"h1": "hang"}, timeout=0.5)
    h1 = [r for r in result.results if r.host == "h1"]
    assert [r.status for r in h1] == [Status.FAILED, Status.NOT_STARTED]
    assert "timed out after 0.5 s in task 'task 0'" in h1[0].msg
    assert ("terminate", "h1") in log
    assert result.stats()["h2"]["changed"] == 2
    assert result.exit_code() == ExitCode.HOST_FAILED


def test_stop_request_lets_tasks_in_flight_end_and_reports_the_rest_not_started():
    async def scenario():
        hosts = ["h1", "h2", "h3"]
        specs = specs_for(hosts)
        options = RunOptions(forks=2)
        pool = ConnectionPool(specs, options, transports={"asyncssh": FakeTransport({}, [])})
        runner = Runner(Catalog(), specs, options, Recorder(), pool)
        runner_task = asyncio.create_task(runner.run([play("a", hosts, 50), play("b", hosts, 1)]))
        while not any(r.index >= 1 for r in runner.result.results):
            await asyncio.sleep(0)
        runner.interrupt()
        return await runner_task

    result = asyncio.run(scenario())
    assert result.interrupted and result.exit_code() == ExitCode.INTERRUPTED
    stats = result.stats()
    assert stats["h3"] == {"not_started": 51}  # waiting for a fork: never contacted
    for host in ("h1", "h2"):
        assert 1 <= stats[host]["changed"] < 50
        assert stats[host]["changed"] + stats[host]["not_started"] == 51
        assert "unknown" not in stats[host]


def test_host_with_no_task_is_still_reached_and_unreachable_if_not():
    plan = play("a", ["h1", "h2"], 1)
    plan.tasks["h2"] = []  # e.g. every task's `when` is false there
    result, _, log = run([plan], {"h2": "down"})
    assert result.unreachable == {"h2": "connection refused"}
    assert ("connect", "h2") in log
    assert result.exit_code() == ExitCode.HOST_UNREACHABLE


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


def test_a_hosts_input_is_not_held_while_its_play_runs():
    """The stdin of a play (~22 KB, the become password in it) is let go once written:
    with --forks hosts in flight, held it was the largest part of the controller's
    memory mid-run (tracemalloc, 200 lab hosts)."""
    held = []

    class Watching(FakeProcess):
        async def write(self, data):
            if set(data) != {"+"}:
                self.input = data
            await super().write(data)

        async def readline(self):
            if getattr(self, "input", None) is not None:
                holders = [r for r in gc.get_referrers(self.input) if inspect.iscoroutine(r)]
                held.extend(r.cr_code.co_name for r in holders)
            return await super().readline()

    class Connection(FakeConnection):
        async def start(self, command):
            return Watching(self.host, self.behaviour, self.log)

    class Transport(FakeTransport):
        async def connect(self, target, options):
            return Connection(target.name, "ok", self.log)

    specs = specs_for(["h1"])
    options = RunOptions()
    pool = ConnectionPool(specs, options, transports={"asyncssh": Transport({}, [])})
    runner = Runner(Catalog(), specs, options, Recorder(), pool)
    result = asyncio.run(runner.run([play("a", ["h1"], 2)]))
    assert result.stats()["h1"]["changed"] == 2 and held == []
