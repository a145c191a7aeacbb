"""Rolling plays on a fake transport (see test_runner.py): batches run one after the
other on the run's connections, a batch that fails them all or exceeds the failure
budget stops the rollout, and so does a failed health gate; what was left untouched is
said, and nothing more runs."""

from __future__ import annotations

import asyncio
import json
import shlex

from test_runner import FakeConnection, FakeProcess, FakeTransport, Recorder, specs_for

from vnetctl.catalog import Catalog
from vnetctl.errors import Location
from vnetctl.fleet.gates import gate_command
from vnetctl.fleet.mesh.gate import broken_pairs
from vnetctl.fleet.rollout import run_in_batches
from vnetctl.playbook.model import Gate, Play
from vnetctl.playbook.render import HostTask, PlayPlan
from vnetctl.runner.control import RunOptions
from vnetctl.runner.payload import CONFIRM_STUB, unpack
from vnetctl.runner.pool import ConnectionPool
from vnetctl.runner.results import ExitCode, Status
from vnetctl.runner.runner import Runner
from vnetctl.transport.base import Unreachable

HERE = Location("book.yml", 1)


def plan(name, hosts, serial=None, max_fail=None, gates=(), commands=None, tasks=2, confirm=None):
    play = Play(hosts=hosts, name=name, serial=serial, max_fail_percentage=max_fail,
                health_gates=list(gates), confirm_timeout=confirm)  # fmt: skip
    host_tasks = {h: [HostTask(i, f"t{i}", "link", {"name": "x"}, HERE) for i in range(tasks)]
                  for h in hosts}  # fmt: skip
    return PlayPlan(play, list(hosts), host_tasks, gate_commands=commands or {})


class RolloutRecorder(Recorder):
    def __init__(self):
        super().__init__()
        self.events = []

    def batch_started(self, play, number, total, hosts):
        self.events.append(("batch", play, number, total, list(hosts)))

    def gates_passed(self, where, labels):
        self.events.append(("passed", where))

    def gates_skipped(self, where):
        self.events.append(("skipped", where))

    def rollout_stopped(self, stopped):
        self.events.append(("stopped", stopped["reason"], stopped["not_started"]))


class GateProcess(FakeProcess):
    """A gate command: exits with the status its host's behaviour says."""

    def __init__(self, host, status, log):
        super().__init__(host, "ok", log)
        self.status, self.stderr = status, f"{host}: said no" if status else ""

    async def readline(self):
        return ""


class ArmingProcess(FakeProcess):
    """A play under commit confirmed: the host arms its timer before the first task."""

    async def write(self, data):
        lines = data.splitlines()  # the play's stdin; later writes are acknowledgements
        if len(lines) > 1 and (unpack(lines[1]).get("confirm") or {}).get("explicit"):
            self.lines.put_nowait(json.dumps({"armed": {"id": "x", "pid": 1}}) + "\n")
        await super().write(data)


class ConfirmProcess(GateProcess):
    """confirm/abort/collect over a new connection (payload.CONFIRM_STUB): confirms, or
    rolls back as asked; `noroll` hosts' rollbacks leave a difference."""

    def __init__(self, host, action, behaviour, log):
        super().__init__(host, 0, log)
        log.append((action, host))
        answer = {"confirmed": True}
        if action != "confirm":
            left = ["1: mtu is 9000, was 1500"] if behaviour == "noroll" else []
            answer = {"rolled_back": not left, "left": left, "problems": [], "after_task": 1}
        self.answer = [json.dumps(answer) + "\n", ""]

    async def write(self, data):
        pass

    async def readline(self):
        return self.answer.pop(0)


class Connection(FakeConnection):
    async def start(self, command):
        if CONFIRM_STUB in shlex.split(command):
            action = shlex.split(command)[-2]
            return ConfirmProcess(self.host, action, self.behaviour, self.log)
        if not command.startswith(("timeout ", "sudo ")):
            self.log.append(("exec", self.host))
            return ArmingProcess(self.host, self.behaviour, self.log)
        if command.startswith(("timeout ", "sudo ")):
            self.log.append(("gate", self.host, command))
            status = int(self.behaviour[len("cmd") :]) if self.behaviour.startswith("cmd") else 0
            return GateProcess(self.host, status, self.log)
        return await super().start(command)


class Transport(FakeTransport):
    """Behaviours of test_runner's, plus `gone`: the play runs, a new connection fails;
    `cmdN`: the play runs, a gate command exits N."""

    async def connect(self, target, options):
        seen = sum(1 for e in self.log if e == ("connect", target.name))
        self.log.append(("connect", target.name))
        behaviour = self.behaviours.get(target.name, "ok")
        if behaviour == "down" or (behaviour == "gone" and seen):
            raise Unreachable("connection refused")
        return Connection(target.name, behaviour, self.log)


def run(plans, behaviours=None, **options):
    hosts = {h for p in plans for h in p.hosts}
    specs = specs_for(hosts)
    log, events = [], RolloutRecorder()
    options = RunOptions(**options)
    transport = Transport(behaviours or {}, log)
    pool = ConnectionPool(specs, options, transports={"asyncssh": transport})
    runner = Runner(Catalog(), specs, options, events, pool)

    async def batches(plans):
        return await run_in_batches(runner, plans)

    result = asyncio.run(runner.run(plans, play=batches))
    return result, events, log


HOSTS = [f"h{i}" for i in range(1, 6)]


def started(log) -> list[str]:
    return [e[1] for e in log if e[0] == "exec"]


def test_batches_run_in_order_on_one_connection_and_one_process_per_host():
    result, events, log = run([plan("roll", HOSTS, serial=[1, "50%"]), plan("after", ["h1"])])
    assert [e[2:] for e in events.events if e[0] == "batch"] == [
        (1, 3, ["h1"]), (2, 3, ["h2", "h3"]), (3, 3, ["h4", "h5"]),
    ]  # fmt: skip
    assert events.plays == [("roll", ["h1"]), ("roll", ["h2", "h3"]), ("roll", ["h4", "h5"]),
                            ("after", ["h1"])]  # fmt: skip
    assert sorted(e[1] for e in log if e[0] == "connect") == HOSTS  # one each
    assert sorted(started(log)) == sorted([*HOSTS, "h1"])  # one process per host per play
    assert result.exit_code() == ExitCode.SUCCESS and result.hosts == HOSTS


def test_a_batch_where_every_host_failed_stops_the_rollout_and_later_plays():
    result, events, log = run(
        [plan("roll", HOSTS, serial=[1, 2]), plan("after", ["h5"])], {"h1": "fail"}
    )
    assert started(log) == ["h1"]
    assert events.events[-1] == (
        "stopped", "every host of batch 1 of 3 of play 'roll' failed or was unreachable",
        ["h2", "h3", "h4", "h5"],
    )  # fmt: skip
    untouched = [(r.host, r.play, r.status) for r in result.results if r.task == "(rollout)"]
    assert untouched == [(h, "roll", Status.NOT_STARTED) for h in HOSTS[1:]] + [
        ("h5", "after", Status.NOT_STARTED)
    ]
    assert result.exit_code() == ExitCode.HOST_FAILED
    assert result.stats()["h4"] == {"not_started": 1}


def test_the_failure_budget_is_a_share_of_the_batch_strictly_exceeded():
    hosts = [f"h{i}" for i in range(1, 11)]
    ok, _, log = run([plan("roll", hosts, serial=[5], max_fail=20)], {"h1": "fail"})
    assert len(started(log)) == 10 and ok.exit_code() == ExitCode.HOST_FAILED  # 1/5 = 20%
    over, events, log = run([plan("roll", hosts, serial=[5], max_fail=20)],
                            {"h1": "fail", "h2": "fail"})  # fmt: skip
    assert started(log) == hosts[:5]
    assert events.events[-1][1] == (
        "2 of 5 hosts of batch 1 of 2 of play 'roll' failed, more than max_fail_percentage 20%"
    )


def test_unreachable_hosts_do_not_count_against_the_budget_as_in_ansible():
    result, _, log = run([plan("roll", HOSTS, serial=[3], max_fail=0)], {"h2": "down"})
    assert sorted(started(log)) == ["h1", "h3", "h4", "h5"]
    assert result.exit_code() == ExitCode.HOST_UNREACHABLE


def test_a_failed_reachable_gate_stops_the_rollout_naming_batch_and_host():
    gates = [Gate("reachable")]
    result, events, log = run([plan("roll", HOSTS, serial=[1, "50%"], gates=gates)],
                              {"h1": "gone"})  # fmt: skip
    assert started(log) == ["h1"] and {e[1] for e in log if e[0] == "connect"} == {"h1"}
    (line,) = [r for r in result.results if r.task == "(health gate reachable)"]
    assert (line.host, line.status) == ("h1", Status.FAILED)
    assert line.msg.startswith("not reachable over a new SSH connection: ")
    assert events.events[-1][1:] == (
        "health gate reachable failed after batch 1 of 3 of play 'roll' on h1",
        ["h2", "h3", "h4", "h5"],
    )
    assert result.exit_code() == ExitCode.HOST_FAILED


def test_gates_pass_batch_after_batch_and_commands_run_on_the_batch_only():
    commands = {h: [f"check {h}"] for h in HOSTS}
    gates = [Gate("reachable"), Gate("command", command="check {{ inventory_hostname }}",
                                     timeout=5)]  # fmt: skip
    result, events, log = run([plan("roll", HOSTS, serial=[2], gates=gates, commands=commands)])
    ran = [(e[1], e[2]) for e in log if e[0] == "gate"]
    assert ran == [(h, gate_command(f"check {h}", 5, specs_for([h])[h])) for h in HOSTS]
    assert [e[1] for e in events.events if e[0] == "passed"] == [
        f"batch {n} of 3 of play 'roll'" for n in (1, 2, 3)
    ]
    assert result.exit_code() == ExitCode.SUCCESS


def test_a_failed_command_gate_says_the_command_its_status_and_output():
    commands = {h: ["ip link show br-vm"] for h in HOSTS}
    gates = [Gate("command", command="ip link show br-vm", timeout=5)]
    result, events, log = run([plan("roll", HOSTS, serial=[2, 3], gates=gates,
                                    commands=commands)], {"h2": "cmd1"})  # fmt: skip
    assert sorted(started(log)) == ["h1", "h2"]
    (line,) = [r for r in result.results if r.status is Status.FAILED]
    assert (line.host, line.msg) == ("h2", "`ip link show br-vm` exited with 1: h2: said no")
    assert events.events[-1][2] == ["h3", "h4", "h5"]


def test_check_mode_runs_the_batches_but_not_the_gates():
    gates = [Gate("reachable")]
    result, events, log = run([plan("roll", HOSTS, serial=[1, "50%"], gates=gates)],
                              {"h1": "gone"}, check=True)  # fmt: skip
    assert sorted(started(log)) == HOSTS
    assert [e[0] for e in events.events].count("skipped") == 3
    assert result.exit_code() == ExitCode.SUCCESS


def test_a_command_gate_runs_under_sudo_when_the_host_becomes():
    spec = specs_for(["h1"])["h1"]
    become = type(spec)(**{**spec.__dict__, "become": True, "become_user": "root"})
    assert gate_command("ip -j link | grep br", 30, become) == (
        "sudo -n -H -u root -- timeout -k 5 30 sh -c 'ip -j link | grep br'"
    )
    assert json.dumps(gate_command("true", 1.5, spec)) == '"timeout -k 5 1.5 sh -c true"'


def test_broken_mesh_pairs_are_said_once_per_host_of_the_batch_state_and_mtu():
    def pair(source, target, vni, state, mtu=8950):
        return {"source": source, "target": target, "vni": vni, "state": state, "mtu": mtu}

    pairs = [
        pair("h1", "h2", 100, "mtu-broken"), pair("h2", "h1", 100, "mtu-broken"),
        pair("h1", "h3", 200, "mtu-broken"), pair("h3", "h1", 200, "reachable"),
        pair("h2", "h3", 100, "unreachable"),  # touches no host of the batch
        pair("h4", "h1", 100, "unreachable"),
    ]  # fmt: skip
    assert broken_pairs(pairs, ["h1"]) == [
        ("h1", "VNI 100, 200 at MTU 8950: MTU (small frames pass, full-size ones do not) "
               "to h2, h3; from h2"),
        ("h1", "VNI 100 at MTU 8950: unreachable from h4"),
    ]  # fmt: skip


def test_a_stop_request_during_a_batch_starts_no_later_batch():
    async def scenario():
        specs = specs_for(HOSTS[:3])
        options = RunOptions()
        events, log = RolloutRecorder(), []
        pool = ConnectionPool(specs, options, transports={"asyncssh": Transport({}, log)})
        runner = Runner(Catalog(), specs, options, events, pool)
        rolling = plan("roll", HOSTS[:3], serial=[1], gates=[Gate("reachable")], tasks=50)

        async def batches(plans):
            return await run_in_batches(runner, plans)

        running = asyncio.create_task(runner.run([rolling], play=batches))
        while not any(r.index >= 1 for r in runner.result.results):
            await asyncio.sleep(0)
        runner.interrupt()
        return await running, events, log

    result, events, log = asyncio.run(scenario())
    assert result.interrupted and result.exit_code() == ExitCode.INTERRUPTED
    assert [e[2] for e in events.events] == [1]  # batch 1 began; no gate, no batch 2
    assert started(log) == ["h1"]
    assert result.stats()["h2"] == result.stats()["h3"] == {"not_started": 50}


def test_under_commit_confirmed_a_failed_gate_rolls_the_batch_back_instead_of_confirming():
    """The hosts of a gated batch are confirmed only after its gates: a failed gate has
    them roll their play back (asked over a new connection), and the run says so."""
    commands = {h: ["check"] for h in HOSTS}
    gates = [Gate("command", command="check", timeout=5)]
    rolling = plan("roll", HOSTS, serial=[2], gates=gates, commands=commands, confirm=60)
    result, events, log = run([rolling], {"h2": "cmd1"})
    asked = [e for e in log if e[0] in ("confirm", "abort", "gate")]
    assert asked == [("gate", "h1", gate_command("check", 5, specs_for(["h1"])["h1"])),
                     ("gate", "h2", gate_command("check", 5, specs_for(["h2"])["h2"])),
                     ("abort", "h1"), ("abort", "h2")]  # fmt: skip
    lines = {(r.host, r.task): (r.status, r.msg) for r in result.results if r.index == -1}
    reason = "health gate command `check` failed after batch 1 of 3 of play 'roll' on h2"
    for host in ("h1", "h2"):
        assert lines[(host, "(confirm)")] == (
            Status.FAILED,
            f"rolled back: {reason}; the host's state equals the state before the play",
        )
    assert result.rollout_stopped == {
        "reason": reason, "gate": True, "rolled_back": ["h1", "h2"], "changed": [],
        "not_started": ["h3", "h4", "h5"],
    }  # fmt: skip
    assert result.exit_code() == ExitCode.HOST_FAILED


def test_under_commit_confirmed_a_batch_is_confirmed_once_its_gates_passed():
    commands = {h: ["check"] for h in HOSTS[:2]}
    gates = [Gate("command", command="check", timeout=5)]
    rolling = plan("roll", HOSTS[:2], serial=[1], gates=gates, commands=commands, confirm=60)
    result, _, log = run([rolling])
    assert [e[:2] for e in log if e[0] in ("confirm", "gate", "exec")] == [
        ("exec", "h1"), ("gate", "h1"), ("confirm", "h1"),
        ("exec", "h2"), ("gate", "h2"), ("confirm", "h2"),
    ]  # fmt: skip
    assert result.exit_code() == ExitCode.SUCCESS and result.rollout_stopped is None


def test_a_failed_gate_without_a_timer_says_the_changes_stay_and_how_to_undo_them():
    commands = {h: ["check"] for h in HOSTS}
    gates = [Gate("command", command="check", timeout=5)]
    result, _, log = run([plan("roll", HOSTS, serial=[2], gates=gates, commands=commands)],
                         {"h1": "cmd1", "h2": "noroll"})  # fmt: skip
    assert not [e for e in log if e[0] in ("confirm", "abort")]
    assert result.rollout_stopped["changed"] == ["h1", "h2"]
    assert result.rollout_stopped["rolled_back"] == []
