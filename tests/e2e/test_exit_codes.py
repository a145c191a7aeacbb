"""Every exit code the table documents (vnetctl/cli/exit_codes.py) is produced here by a
real vnetctl process in a scenario of its own, and each scenario ends with exactly the
code the table gives it. A code added to the table without a scenario fails; so does a
scenario for a code the table does not list. The codes every command shares (1, 130,
141) are produced for every command: a usage error, SIGINT while it waits to write, and
a reader gone before it writes."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from vnetctl_process import (
    ROOT,
    VNETCTL,
    environment,
    interrupted_while_writing,
    into_closed_pipe,
    run_lock_held,
    status,
)

from tests.labhosts import vm_veth
from vnetctl.cli import exit_codes
from vnetctl.drift.history import History
from vnetctl.drift.report import DriftItem, DriftReport, HostDrift, HostState, Kind
from vnetctl.fleet.shards import Shard
from vnetctl.lab import LabState, host_exec, start_sshd, stop_sshd

SITE = str(ROOT / "playbooks" / "site.yml")
MESH = str(ROOT / "playbooks" / "vxlan-mesh.yml")
FAILING = "- hosts: all\n  tasks:\n    - link: {name: eth9, mtu: 1500}\n"


@dataclass
class Context:
    tmp: Path
    request: pytest.FixtureRequest
    _lab: LabState | None = field(default=None)

    @property
    def lab(self) -> LabState:
        if self._lab is None:  # only scenarios that need hosts bring the lab up
            self._lab = self.request.getfixturevalue("fresh_hosts")
        return self._lab

    @property
    def inv(self) -> str:
        return str(self.lab.inventory_path)

    @property
    def env(self) -> dict:
        return environment(self.tmp / "state")

    def vnetctl(self, *args: str) -> int:
        done = subprocess.run([*VNETCTL, *args], capture_output=True, text=True,
                              env=self.env, cwd=self.tmp, timeout=300)  # fmt: skip
        assert "internal error" not in done.stderr, done.stderr
        return status(done.returncode)

    def write(self, name: str, text: str) -> str:
        (self.tmp / name).write_text(text)
        return str(self.tmp / name)

    @contextmanager
    def sshd_stopped(self, index: int = 2):
        host = self.lab.host_names[index]
        stop_sshd(self.lab.name, host)
        try:
            yield
        finally:
            start_sshd(self.lab.name, host)

    def schedule_check(self) -> list[str]:
        """A check that plans, on hosts never contacted."""
        inv = self.write("inv.yml", "all:\n  hosts:\n    h1: {ansible_host: 192.0.2.10}\n")
        return [self.write("site.yml", FAILING), "-i", inv]


Scenario = Callable[[Context], int]
SCENARIOS: dict[tuple[str, int], tuple[Scenario, bool]] = {}
# what each command does when it works: interrupted or cut off in the middle of it
INVOCATIONS: dict[str, tuple[Callable[[Context], list[str]], bool]] = {
    "run": (lambda c: ["run", SITE, "-i", c.inv], True),
    "facts": (lambda c: ["facts", "-i", c.inv], True),
    "snapshot": (lambda c: ["snapshot", "-i", c.inv], True),
    "mesh check": (lambda c: ["mesh", "check", MESH, "-i", c.inv], True),
    "drift": (lambda c: ["drift", SITE, "-i", c.inv, "--no-history"], True),
    "drift history": (lambda c: ["drift", "history", "--history", str(c.tmp / "h.sqlite")], False),
    "drift report": (lambda c: ["drift", "report", "--history", str(c.tmp / "h.sqlite")], False),
    "drift schedule install": (
        lambda c: [
            "drift",
            "schedule",
            "install",
            "--cron",
            "--name",
            "x",
            "--cron-dir",
            str(c.tmp / "cron"),
            *c.schedule_check(),
        ],
        False,
    ),  # fmt: skip
    "drift schedule remove": (
        lambda c: [
            "drift",
            "schedule",
            "remove",
            "--cron",
            "--name",
            "x",
            "--cron-dir",
            str(c.tmp / "none"),
        ],
        False,
    ),  # fmt: skip
    "stats": (lambda c: ["stats", "-i", c.inv], True),
    "trace": (
        lambda c: ["trace", *(f"{h}:eth0" for h in c.lab.host_names[:2]), "-i", c.inv],
        True,
    ),  # fmt: skip
    "inventory": (lambda c: ["inventory", "-i", c.write("inv.ini", "h1 a=1\n"), "--list"], False),
    "lab up": (lambda c: ["lab", "up", "--name", c.lab.name, "--hosts", "3"], True),
    "lab status": (lambda c: ["lab", "status", "--name", c.lab.name], True),
    "lab reset": (lambda c: ["lab", "reset", "--name", c.lab.name], True),
    "lab down": (lambda c: ["lab", "down", "--name", "nolab"], False),  # says "no lab"
}


def scenario(command: str, code: int, lab: bool = False):
    def register(produce: Scenario) -> Scenario:
        SCENARIOS[(command, code)] = (produce, lab)
        return produce

    return register


for _command, (_invocation, _lab) in INVOCATIONS.items():
    scenario(_command, 1)(lambda c, cmd=_command: c.vnetctl(*cmd.split(), "--no-such-option"))
    scenario(_command, 130, _lab)(
        lambda c, cmd=_command: interrupted_while_writing(
            [*VNETCTL, *INVOCATIONS[cmd][0](c)], c.env, c.tmp
        )
    )
    scenario(_command, 141, _lab)(
        lambda c, cmd=_command: into_closed_pipe([*VNETCTL, *INVOCATIONS[cmd][0](c)], c.env, c.tmp)
    )


@scenario("run", 0, lab=True)
def _run_applies(c: Context) -> int:
    return c.vnetctl("run", SITE, "-i", c.inv)


@scenario("run", 2, lab=True)
def _run_task_fails(c: Context) -> int:
    return c.vnetctl("run", c.write("bad.yml", FAILING), "-i", c.inv)


@scenario("run", 3, lab=True)
def _run_host_unreachable(c: Context) -> int:
    with c.sshd_stopped():
        return c.vnetctl("run", SITE, "-i", c.inv, "--retries", "0")


def test_run_check_failure_or_detailed_change_beside_an_unreachable_host_is_2(
    tmp_path, request, lab_required
):
    """2 whatever else happened: an unreachable host does not hide what the others need."""
    c = Context(tmp_path, request)
    with c.sshd_stopped():
        failing = c.vnetctl("run", c.write("bad.yml", FAILING), "-i", c.inv, "--check",
                            "--retries", "0")  # fmt: skip
        changes = c.vnetctl("run", SITE, "-i", c.inv, "--check", "--detailed-exitcode",
                            "--retries", "0")  # fmt: skip
        plain = c.vnetctl("run", SITE, "-i", c.inv, "--check", "--retries", "0")
    assert (failing, changes, plain) == (2, 2, 3)


for _command in ("facts", "snapshot", "stats"):
    scenario(_command, 0, lab=True)(lambda c, cmd=_command: c.vnetctl(cmd, "-i", c.inv))

    @scenario(_command, 2, lab=True)
    def _unreadable(c: Context, cmd: str = _command) -> int:
        with run_lock_held(c.lab, c.lab.host_names[0]):
            return c.vnetctl(cmd, "-i", c.inv, "--lock-wait", "1")

    @scenario(_command, 3, lab=True)
    def _unreachable(c: Context, cmd: str = _command) -> int:
        with c.sshd_stopped():
            return c.vnetctl(cmd, "-i", c.inv, "--retries", "0")


@scenario("mesh check", 0, lab=True)
def _mesh_reachable(c: Context) -> int:
    assert c.vnetctl("run", MESH, "-i", c.inv) == 0
    return c.vnetctl("mesh", "check", MESH, "-i", c.inv)


@scenario("mesh check", 2, lab=True)
def _mesh_not_applied(c: Context) -> int:
    return c.vnetctl("mesh", "check", MESH, "-i", c.inv)


@scenario("mesh check", 3, lab=True)
def _mesh_member_unreachable(c: Context) -> int:
    assert c.vnetctl("run", MESH, "-i", c.inv) == 0
    with c.sshd_stopped():
        return c.vnetctl("mesh", "check", MESH, "-i", c.inv, "--retries", "0")


def _vm_ports(c: Context) -> tuple[str, str]:
    """The mesh applied and a VM-like port on br-vx100 of the first two hosts, which
    have spoken (their bridges learned each other's MAC): the two ports' guest ends."""
    assert c.vnetctl("run", MESH, "-i", c.inv) == 0
    guests = []
    for i, host in enumerate(c.lab.host_names[:2], start=1):
        port = vm_veth(c.lab, host, f"vm{i}", f"52:54:00:7e:00:0{i}")
        for argv in (["ip", "link", "set", port, "master", "br-vx100"],
                     ["ip", "addr", "add", f"192.168.100.{i}/24", "dev", f"vm{i}"]):  # fmt: skip
            host_exec(c.lab.name, host, argv, check=True)
        guests.append(f"{host}:vm{i}")
    ping = ["ping", "-c", "1", "-W", "2", "192.168.100.2"]
    assert host_exec(c.lab.name, c.lab.host_names[0], ping).returncode == 0
    return guests[0], guests[1]


@scenario("trace", 0, lab=True)
def _trace_delivered(c: Context) -> int:
    return c.vnetctl("trace", *_vm_ports(c), "-i", c.inv)


@scenario("trace", 2, lab=True)
def _trace_dropped(c: Context) -> int:
    source, destination = _vm_ports(c)
    down = ["ip", "link", "set", "vm2p", "down"]
    host_exec(c.lab.name, c.lab.host_names[1], down, check=True)
    return c.vnetctl("trace", source, destination, "-i", c.inv)


@scenario("drift", 0, lab=True)
def _no_drift(c: Context) -> int:
    assert c.vnetctl("run", SITE, "-i", c.inv) == 0
    return c.vnetctl("drift", SITE, "-i", c.inv)


@scenario("drift", 3, lab=True)
def _drift_unknown(c: Context) -> int:
    assert c.vnetctl("run", SITE, "-i", c.inv) == 0
    with c.sshd_stopped():
        return c.vnetctl("drift", SITE, "-i", c.inv, "--retries", "0")


@scenario("drift", 2, lab=True)
def _drift_found_beside_an_unreachable_host(c: Context) -> int:
    """Drift on a reachable host is 2 even with another host unreachable."""
    assert c.vnetctl("run", SITE, "-i", c.inv) == 0
    host_exec(c.lab.name, c.lab.host_names[1], ["ip", "link", "set", "eth2", "mtu", "1500"],
              check=True)  # fmt: skip
    with c.sshd_stopped():
        return c.vnetctl("drift", SITE, "-i", c.inv, "--retries", "0")


scenario("inventory", 0)(lambda c: c.vnetctl(*INVOCATIONS["inventory"][0](c)))
scenario("drift history", 0)(lambda c: c.vnetctl("drift", "history"))
scenario("drift history", 1)(lambda c: c.vnetctl("drift", "history", "--run", "999"))


def fleet_report(c: Context, *states: HostState, shards: int = 2) -> int:
    """`drift report` of a history where `shards` shards recorded their hosts (h1, h2...
    in `states`, a drifted host with one item), the last shard none when it is 0."""
    with History(c.tmp / "h.sqlite") as history:
        for index in range(1, max(shards, 1) + 1):
            shard = Shard(index, max(shards, 1))
            hosts = [HostDrift(f"h{n}", state, resources=1) for n, state in enumerate(states, 1)
                     if shard.holds(f"h{n}")]  # fmt: skip
            for host in (h for h in hosts if h.state is HostState.DRIFTED):
                host.items = [DriftItem(host.host, "link eth2", Kind.DIFFERENT, "mtu", 9000, 1500)]
            report = DriftReport("site.yml", "inv.yml", 1.0, 1.0, hosts=hosts)
            if shards or index == 1:
                history.record(report, "check", "site", shard=str(shard) if shards else None)
    return c.vnetctl("drift", "report", "--history", str(c.tmp / "h.sqlite"))


scenario("drift report", 0)(lambda c: fleet_report(c, HostState.IN_SYNC, HostState.IN_SYNC))
scenario("drift report", 1)(lambda c: c.vnetctl(*INVOCATIONS["drift report"][0](c)))
scenario("drift report", 2)(lambda c: fleet_report(c, HostState.IN_SYNC, HostState.DRIFTED))
scenario("drift report", 3)(lambda c: fleet_report(c, HostState.UNREACHABLE, shards=0))
scenario("drift schedule install", 0)(
    lambda c: c.vnetctl(*INVOCATIONS["drift schedule install"][0](c))
)
scenario("drift schedule remove", 0)(
    lambda c: c.vnetctl(*INVOCATIONS["drift schedule remove"][0](c))
)
scenario("lab up", 0, lab=True)(lambda c: c.vnetctl("lab", "up", "--name", c.lab.name))
scenario("lab up", 1)(lambda c: c.vnetctl("lab", "up", "--name", "Not-A-Name"))
scenario("lab status", 0, lab=True)(lambda c: c.vnetctl("lab", "status", "--name", c.lab.name))
scenario("lab status", 1)(lambda c: c.vnetctl("lab", "status", "--name", "nolab"))
scenario("lab reset", 0, lab=True)(lambda c: c.vnetctl("lab", "reset", "--name", c.lab.name))
scenario("lab reset", 1)(lambda c: c.vnetctl("lab", "reset", "--name", "nolab"))
scenario("lab down", 0)(lambda c: c.vnetctl("lab", "down", "--name", "nolab"))
scenario("lab down", 1)(lambda c: c.vnetctl("lab", "down", "--name", "Not-A-Name"))


DOCUMENTED = [(cmd, code) for cmd in exit_codes.COMMANDS for code in exit_codes.codes(cmd)]


def case(command: str, code: int):
    needs_lab = SCENARIOS.get((command, code), (None, False))[1]
    return pytest.param(command, code, id=f"{command} {code}",
                        marks=[pytest.mark.lab] if needs_lab else [])  # fmt: skip


@pytest.mark.parametrize(("command", "code"), [case(*c) for c in DOCUMENTED])
def test_each_documented_exit_code_is_produced(command, code, tmp_path, request):
    assert (command, code) in SCENARIOS, f"no scenario ends `vnetctl {command}` with {code}"
    produce, needs_lab = SCENARIOS[(command, code)]
    if needs_lab:
        request.getfixturevalue("lab_required")
    assert produce(Context(tmp_path, request)) == code


def test_no_scenario_is_of_a_code_the_table_lacks():
    assert set(SCENARIOS) <= set(DOCUMENTED)
