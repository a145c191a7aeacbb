"""The host engine: comparing, batching, converging, verifying and rolling back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
from host_process import host_process, records_until_done

from vnetctl.catalog import Catalog
from vnetctl.hostside import host_lock
from vnetctl.runner.payload import LockSpec, build_stdin, remote_command

CATALOG = Catalog()
host = CATALOG.host_lib()


def test_diff_fields_flattens_and_compares_lists_as_sets():
    current = {"mtu": 1500, "ports": ["eth2", "eth1"], "ports_mtu": {"eth1": 1500}, "x": 1}
    desired = {"mtu": 9000, "ports": ["eth1", "eth2"], "ports_mtu": {"eth1": 9000}}
    assert host.diff_fields(current, desired) == [
        {"field": "mtu", "before": 1500, "after": 9000},
        {"field": "ports_mtu.eth1", "before": 1500, "after": 9000},
    ]


def test_merge_desired_keeps_unset_fields():
    assert host.merge_desired({"mtu": 1500, "stp": True}, {"mtu": None, "stp": False}) == {
        "mtu": 1500,
        "stp": False,
    }


def test_batches_group_consecutive_steps_by_tool():
    a, b, c, d = steps = [("ip", "a"), ("ip", "b"), ("bridge", "c"), ("ip", "d")]
    assert host.batches(steps) == [("ip", [a, b]), ("bridge", [c]), ("ip", [d])]


class FakeHost:
    """A resource whose value is `state["value"]`; `ip` batches of "link N" change it."""

    def __init__(self, fail_on=None):
        self.state = {"value": 1}
        self.calls = []
        self.fail_on = fail_on

    def run(self, argv, stdin=None):
        self.calls.append(stdin)
        for line in stdin.splitlines():
            if line == self.fail_on:
                raise host.ModuleError("ip -batch - failed: " + line)
            self.state["value"] = int(line.split()[1])
        return ""

    def module(self):
        return SimpleNamespace(
            read=lambda params, facts: {"value": self.state["value"]},
            desired=lambda params, current, facts: {"value": params["value"]},
            steps=lambda current, desired, facts: [
                ("ip", f"link {desired['value']}"),
                ("ip", f"link {desired['value'] + 100}"),
                ("ip", f"link {desired['value']}"),
            ],
        )


def facts():
    return SimpleNamespace(refresh=lambda: None)


def test_check_mode_plans_without_running_anything():
    fake = FakeHost()
    result = host.execute(fake.module(), {"value": 2}, True, facts(), runner=fake.run)
    assert result["changed"] and not result["failed"]
    assert result["changes"] == [{"field": "value", "before": 1, "after": 2}]
    assert fake.calls == []


def test_apply_is_one_batch_per_tool_and_verified():
    fake = FakeHost()
    result = host.execute(fake.module(), {"value": 2}, False, facts(), runner=fake.run)
    assert result["changed"] and not result["failed"], result["msg"]
    assert fake.calls == ["link 2\nlink 102\nlink 2\n"]
    again = host.execute(fake.module(), {"value": 2}, False, facts(), runner=fake.run)
    assert not again["changed"] and len(fake.calls) == 1


def test_failed_apply_rolls_back_with_the_same_planner():
    fake = FakeHost(fail_on="link 102")  # the batch's second line, after "link 2" took effect
    result = host.execute(fake.module(), {"value": 2}, False, facts(), runner=fake.run)
    assert result["failed"] and "(rolled back)" in result["msg"]
    assert fake.state["value"] == 1  # rollback planned "link 1" from the half-applied state
    assert fake.calls[-1] == "link 1\nlink 101\nlink 1\n"


def test_failed_rollback_says_what_is_left_and_fails():
    fake = FakeHost(fail_on="link 102")
    module = fake.module()  # forward: "link 2" takes effect, then the batch fails; back: fails
    module.steps = lambda current, desired, facts: [
        *([("ip", f"link {desired['value']}")] if desired["value"] != 1 else []),
        ("ip", "link 102"),
    ]
    result = host.execute(module, {"value": 2}, False, facts(), runner=fake.run)
    assert result["failed"] and "(rolled back)" not in result["msg"]
    assert "; rollback incomplete: value is 2, was 1 (rollback failed: " in result["msg"]


def test_apply_that_does_not_converge_fails():
    fake = FakeHost()
    module = fake.module()
    module.steps = lambda current, desired, facts: [("ip", "link 3")]
    result = host.execute(module, {"value": 2}, False, facts(), runner=fake.run)
    assert result["failed"] and result["msg"].startswith("did not converge: value is 3, wanted 2")


def test_normalize_params_types_defaults_and_unknowns():
    spec = CATALOG["linux_bridge"]
    params = host.normalize_params(spec, {"name": "br0", "mtu": "9000", "stp": "yes"})
    assert params["mtu"] == 9000 and params["stp"] is True and params["state"] == "present"
    for bad, message in [
        ({"name": "b", "mtuu": 1}, "unknown argument(s): mtuu"),
        ({}, "missing required argument: name"),
        ({"name": "b", "state": "gone"}, "'gone' is not one of: present, absent"),
    ]:
        try:
            host.normalize_params(spec, bad)
        except host.ModuleError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(bad)


def host_side(tmp_path, tasks, command=None, check=True, **popen):
    """The host's process for one play (a `with` block), its lock in `tmp_path`."""
    stdin = build_stdin(CATALOG, tasks, check=check, lock=LockSpec(wait=1, directory=str(tmp_path)))
    return host_process(stdin, command, **popen)


def test_remote_boot_protocol_end_to_end_in_a_local_process(tmp_path):
    """The exact stdin a host receives, run by a local python3: one JSON line per task."""
    tasks = [
        {"index": 0, "module": "link", "args": {"name": "lo"}},
        {"index": 1, "module": "link", "args": {"name": "no-such-link0"}},
        {"index": 2, "module": "facts", "args": {}},
    ]
    with host_side(tmp_path, tasks) as proc:
        lines = records_until_done(proc)
    results = [r for r in lines if "result" in r]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["start"] for r in lines if "start" in r] == [0, 1]  # skipped: never started
    assert lines[-1] == {"done": True, "stopped": False}
    assert results[0]["result"]["changed"] is False and not results[0]["result"]["failed"]
    assert results[1]["result"]["msg"] == "interface no-such-link0 does not exist on this host"
    assert results[2]["result"]["skipped"]  # a failed task skips the rest on that host
    assert results[2]["result"]["skipped_after"] == 1
    assert not list(tmp_path.glob("*.holder"))  # the lock's holder file is gone


def test_eof_on_stdin_stops_the_host_process_before_its_next_task(tmp_path):
    """The controller closing stdin (or the session dying) ends the play after the task
    in flight: the host process never outlives its session by more than one task."""
    tasks = [{"index": i, "module": "link", "args": {"name": "lo"}} for i in range(500)]
    with host_side(tmp_path, tasks) as proc:
        first = json.loads(proc.stdout.readline())
        assert first == {"start": 0}
        proc.stdin.close()
        rest = [json.loads(line) for line in proc.stdout.read().splitlines()]
        assert proc.wait(timeout=30) == 0
    assert rest[-1] == {"done": True, "stopped": True}
    assert len([r for r in rest if "result" in r]) < 500


def test_second_play_waits_for_the_host_lock_then_fails_naming_the_holder(tmp_path):
    owner = "alice@ctl pid 7: vnetctl run site.yml"
    lock = host_lock.take_lock(
        {"dir": str(tmp_path), "owner": owner}, False, threading.Event(), None
    )  # another run applying on this host
    try:
        tasks = [{"index": 0, "module": "link", "args": {"name": "lo"}}]
        with host_side(tmp_path, tasks, check=True) as proc:
            records = records_until_done(proc)
    finally:
        lock.release()
    assert records[0] == {"waiting": records[0]["waiting"]} and owner in records[0]["waiting"]
    assert records[1]["stage"] == "lock"
    fatal = records[1]["fatal"]
    assert f"host lock held by {owner} (exclusive, since " in fatal
    assert "gave up after 1 s" in fatal
    assert records[2] == {"done": True, "stopped": False}  # no task was started
    assert not list(tmp_path.glob("*.holder"))


def test_check_runs_share_the_lock(tmp_path):
    lock = host_lock.take_lock({"dir": str(tmp_path)}, True, threading.Event(), None)
    try:
        tasks = [{"index": 0, "module": "link", "args": {"name": "lo"}}]
        with host_side(tmp_path, tasks, check=True) as proc:
            records = records_until_done(proc)
    finally:
        lock.release()
    assert records[1]["result"]["failed"] is False


def test_remote_process_ignores_the_login_directory_and_python_environment(tmp_path):
    """A json.py where the session starts, or PYTHONPATH, must not change what runs."""
    (tmp_path / "json.py").write_text("raise SystemExit('hijacked')\n")
    tasks = [{"index": 0, "module": "link", "args": {"name": "lo"}}]
    with host_side(
        tmp_path,
        tasks,
        command=remote_command(f"/usr/bin/env {sys.executable}"),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    ) as proc:
        records = records_until_done(proc)
    assert records[1]["result"]["failed"] is False


HEAVY = {"json", "re", "enum", "subprocess", "threading", "typing", "ipaddress", "__future__",
         "contextlib", "copy", "shutil", "traceback"}  # fmt: skip


@pytest.mark.parametrize("check", [True, False])
def test_a_host_play_imports_nothing_heavy(tmp_path, check):
    """Every host pays its play's imports on its own CPU: the host side keeps to C
    modules and small ones (json, re and subprocess alone were ~20 ms of a ~40 ms play).
    Apply mode loads the commit-confirmed program and journals each task too."""
    absent = {"name": "br-import", "state": "absent"}
    tasks = [{"index": 0, "module": "linux_bridge", "args": absent},
             {"index": 1, "module": "link", "args": {"name": "lo"}}]  # fmt: skip
    stdin = build_stdin(CATALOG, tasks, check=check, lock=LockSpec(wait=1, directory=str(tmp_path)))
    with subprocess.Popen(
        ["/bin/sh", "-c", remote_command(sys.executable).replace(" -I ", " -X importtime -I ", 1)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        proc.stdin.write(stdin)
        proc.stdin.flush()
        out = []
        while line := proc.stdout.readline():
            out.append(line)
            if '"done"' in line:
                break
        proc.stdin.close()
        err = proc.stderr.read()
        proc.wait(timeout=30)
    assert '"done": true' in out[-1], out
    imported = {line.split("|")[-1].strip() for line in err.splitlines() if "import time:" in line}
    assert not (HEAVY & imported), sorted(HEAVY & imported)
