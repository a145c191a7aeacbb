"""`--workers 2` on a lab of 20 hosts: the same JSON report, recap and hosts' state as
one process (a playbook with a VXLAN mesh, so the fleet expander runs in the parent);
drift the same; a worker killed mid-play fails its hosts alone, their play stopped
after the task in flight, the exit code 2, and the run does not hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.labhosts import own_lab, wait_until
from vnetctl.fleet.workers.parent import WORKER_LABEL, share
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

HOSTS = 20
PLAYBOOK = str(Path(__file__).parent / "playbooks" / "drift.yml")
UNDO = """\
- hosts: all
  tasks:
    - {name: no segment, command: {argv: [ip, link, del, vxlan100]}}
    - {name: no tenant bridge, linux_bridge: {name: br-vx100, state: absent}}
    - {name: no VM bridge, linux_bridge: {name: br-vm, state: absent}}
    - {name: NICs back, link: {name: "{{ item }}", mtu: 1500}, loop: [eth1, eth2]}
"""


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("wk", tmp_path_factory.mktemp("wk"), hosts=HOSTS) as state:
        yield state


def report(capsys, argv: list[str]) -> tuple[int, dict]:
    """vnetctl in a process of its own, as an operator runs it: a worker is forked only
    from a process that is its main thread alone, which pytest's, after other tests'
    threads, need not be."""
    argv = [sys.executable, "-m", "vnetctl", *argv, "--format", "json", "-f", str(HOSTS)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.stdout.startswith("{"), done.stderr
    return done.returncode, json.loads(done.stdout)


def rows(doc: dict) -> list:
    """Each host's results, whatever order they arrived in (two workers interleave)."""
    return sorted(
        (r["host"], r["play"], r["index"], r["status"], r["msg"], json.dumps(r["changes"]))
        for r in doc["results"]
    )


def links(lab) -> dict[str, list]:
    """What the playbook touches on every host, as the kernel has it."""
    state = {}
    for host in lab.host_names:
        shown = host_exec(lab.name, host, ["ip", "-d", "-j", "link", "show"], check=True)
        state[host] = sorted(
            (k["ifname"], k["mtu"], k.get("master"), k.get("linkinfo", {}).get("info_kind"))
            for k in json.loads(shown.stdout)
        )
    return state


def test_two_workers_apply_and_check_as_one_process_does(lab, tmp_path, capsys):
    inv = str(lab.inventory_path)
    undo = tmp_path / "undo.yml"
    undo.write_text(UNDO)
    bare = links(lab)
    code_w, by_workers = report(capsys, ["run", PLAYBOOK, "-i", inv, "--workers", "2"])
    after_w = links(lab)
    assert after_w != bare
    drift_w = report(capsys, ["drift", PLAYBOOK, "-i", inv, "--no-history", "--workers", "2"])
    code, undone = report(capsys, ["run", str(undo), "-i", inv])
    assert code == 0, [(r["host"], r["msg"]) for r in undone["results"] if r["status"] == "failed"]
    assert links(lab) == bare
    code_1, by_one = report(capsys, ["run", PLAYBOOK, "-i", inv])
    assert links(lab) == after_w
    drift_1 = report(capsys, ["drift", PLAYBOOK, "-i", inv, "--no-history"])
    assert code_w == code_1 == 0
    assert rows(by_workers) == rows(by_one)
    assert by_workers["stats"] == by_one["stats"]  # the recap's counts
    assert {k: v for k, v in by_workers.items() if k != "results"} == {
        k: v for k, v in by_one.items() if k != "results"
    }
    assert drift_w[0] == drift_1[0] == 0
    assert [(h["host"], h["state"]) for h in drift_w[1]["hosts"]] == [
        (h["host"], h["state"]) for h in drift_1[1]["hosts"]
    ]


def test_two_workers_read_the_same_facts_as_one_process(lab):
    """`vnetctl facts --workers 2`: every host's facts, as one process reads them: the
    same kinds of facts, and each host's own links (their MACs are the host's alone);
    counters, neighbour states and address lifetimes move between two reads."""
    argv = [sys.executable, "-m", "vnetctl", "facts", "-i", str(lab.inventory_path)]
    docs = []
    for extra in (["--workers", "2"], []):
        done = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        docs.append(json.loads(done.stdout))
    by_workers, by_one = docs
    assert by_workers["errors"] == by_one["errors"] == {}
    assert sorted(by_workers["hosts"]) == sorted(lab.host_names)
    for host in lab.host_names:
        mine, theirs = by_workers["hosts"][host], by_one["hosts"][host]
        assert sorted(mine) == sorted(theirs), host
        assert identity(mine) == identity(theirs), host


def identity(facts: dict) -> list[tuple]:
    return sorted((k["ifname"], k["address"], k["mtu"], k.get("master")) for k in facts["links"])


def test_two_workers_read_the_same_counters_again_and_again(lab, tmp_path):
    """`vnetctl stats --workers 2`: every host and port one process reads; with --every
    each pass forks its workers again (from a process whose threads of the last pass
    must be gone first)."""
    argv = [sys.executable, "-m", "vnetctl", "stats", "-i", str(lab.inventory_path),
            "--format", "json"]  # fmt: skip
    docs = []
    for extra in (["--workers", "2"], []):
        done = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        docs.append(json.loads(done.stdout))
    ports = [{h: sorted(s["ports"]) for h, s in doc["hosts"].items()} for doc in docs]
    assert sorted(ports[0]) == sorted(lab.host_names) and ports[0] == ports[1]

    out = tmp_path / "stats.json"
    again = [*argv, "--workers", "2", "--every", "10s", "--count", "2", "-o", str(out)]
    done = subprocess.run(again, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(out.read_text())["hosts"]) == sorted(lab.host_names)


HOLD = """\
- hosts: all
  tasks:
    - {name: mark, command: {argv: [touch, /run/vnetctl-workers-test]}}
    - {name: hold, command: {argv: [sleep, "4"]}}
    - {name: after, linux_bridge: {name: br-after, stp: false}}
"""


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return sorted(int(p) for p in path.read_text().split()) if path.exists() else []


def test_a_killed_worker_fails_its_hosts_alone(lab, tmp_path):
    book = tmp_path / "hold.yml"
    book.write_text(HOLD)
    argv = [sys.executable, "-m", "vnetctl", "run", str(book), "-i", str(lab.inventory_path),
            "--workers", "2", "--format", "json", "-f", str(HOSTS)]  # fmt: skip
    marked = lambda h: host_exec(lab.name, h, ["test", "-e", "/run/vnetctl-workers-test"])  # noqa: E731
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        try:
            wait_until(lambda: len(children(run.pid)) == 2, 30, "two worker processes")
            wait_until(lambda: all(marked(h).returncode == 0 for h in lab.host_names), 60,
                       "every host in its `hold` task")  # fmt: skip
            os.kill(children(run.pid)[1], signal.SIGKILL)
            out, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert run.returncode == 2, err
    doc = json.loads(out)
    killed = set(share(lab.host_names, 2)[1])
    lost = {r["host"] for r in doc["results"] if r["task"] == WORKER_LABEL}
    assert lost == killed
    for r in doc["results"]:
        if r["host"] in killed and r["index"] >= 1:
            assert r["status"] == "unknown", r
        elif r["host"] in killed and r["index"] == -1:
            assert r["status"] == "failed" and "killed by SIGKILL" in r["msg"], r
        else:
            assert r["status"] == "changed", r
    for host in lab.host_names:  # the host's play stopped with the worker's connection
        made = host_exec(lab.name, host, ["ip", "link", "show", "br-after"]).returncode == 0
        assert made == (host not in killed), host
        host_exec(lab.name, host, ["rm", "-f", "/run/vnetctl-workers-test"], check=True)
        host_exec(lab.name, host, ["ip", "link", "del", "br-after"])
