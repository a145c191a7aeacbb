"""Commit confirmed on the lab: a play that cuts a host off is undone by the host itself,
a confirmed play leaves nothing behind, and the watchdog outlives its SSH session."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.faults import finish, mtu, start_vnetctl, vnetctl_pids
from tests.labhosts import wait_until
from vnetctl.catalog import Catalog
from vnetctl.lab import host_exec
from vnetctl.runner.payload import (
    ConfirmSpec,
    build_stdin,
    confirm_command,
    confirm_stdin,
    remote_command,
)

pytestmark = pytest.mark.lab


def links(lab, host: str) -> dict:
    out = host_exec(lab.name, host, ["ip", "-j", "link", "show"], check=True).stdout
    return {link["ifname"]: link for link in json.loads(out)}


def leftovers(lab, host: str) -> list[str]:
    out = host_exec(lab.name, host, ["sh", "-c", "ls -d /run/lock/vnetctl-confirm-* 2>/dev/null"])
    return out.stdout.split()


def playbook(tmp_path: Path, victim: str) -> str:
    path = tmp_path / "cut.yml"
    path.write_text(yaml.safe_dump([{"hosts": "all", "tasks": [
        {"name": "eth1 mtu", "link": {"name": "eth1", "mtu": 1400}},
        {"name": "eth0 down", "link": {"name": "eth0", "admin_state": "down"},
         "when": f"inventory_hostname == '{victim}'"},
    ]}]))  # fmt: skip
    return str(path)


def test_a_play_that_cuts_the_host_off_is_rolled_back_by_the_host(lab3, fresh_hosts, tmp_path):
    victim, others = lab3.host_names[0], lab3.host_names[1:]
    started = time.monotonic()
    code, out, err = finish(start_vnetctl(
        "run", playbook(tmp_path, victim), "-i", str(lab3.inventory_path), "--format", "json",
        "--confirm-timeout", "8s",
    ), timeout=120)  # fmt: skip
    took = time.monotonic() - started
    doc = json.loads(out)
    assert code == 2, err
    (line,) = [r for r in doc["results"] if r["host"] == victim and r["task"] == "(confirm)"]
    assert line["status"] == "failed"
    assert line["msg"] == (
        "rolled back: contact lost after applying task 'eth0 down'; the host's state "
        "equals the state before the play"
    )
    # the state before the play, re-read: eth0 up, eth1 at its old MTU
    assert "UP" in links(lab3, victim)["eth0"]["flags"] and mtu(lab3, victim) == 1500
    for host in others:  # the same run, unaffected: applied and confirmed
        assert doc["stats"][host] == {"changed": 1}
        assert mtu(lab3, host) == 1400
    assert took < 8 + 30
    for host in lab3.host_names:
        assert leftovers(lab3, host) == [] and vnetctl_pids(lab3, host) == []


def test_a_confirmed_play_leaves_no_watchdog_and_no_file(lab3, fresh_hosts, tmp_path):
    path = tmp_path / "fine.yml"
    path.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "all",
                    "confirm_timeout": "30s",
                    "tasks": [{"link": {"name": "eth1", "mtu": 1400}}],
                }
            ]
        )
    )
    code, out, err = finish(start_vnetctl("run", str(path), "-i", str(lab3.inventory_path)))
    assert code == 0, err
    assert out.count("confirmed over a new connection") == 3
    for host in lab3.host_names:
        assert mtu(lab3, host) == 1400
        assert leftovers(lab3, host) == [] and vnetctl_pids(lab3, host) == []


def test_the_watchdog_survives_its_session_and_rolls_back(lab3, fresh_hosts):
    """The host side alone, over real OpenSSH: arm, lose the session, roll back."""
    host = lab3.hosts[1]
    confirm = ConfirmSpec("t" + str(time.time_ns())[-10:], timeout=3)
    tasks = [{"index": 0, "module": "link", "args": {"name": "eth1", "mtu": 1300}}]
    stdin = build_stdin(Catalog(), tasks, check=False, confirm=confirm)
    ssh = ["ssh", "-F", "/dev/null", "-i", str(lab3.key_path), "-o", "BatchMode=yes",
           "-o", f"UserKnownHostsFile={lab3.known_hosts_path}", f"root@{host.address}",
           remote_command("/usr/bin/python3")]  # fmt: skip
    with subprocess.Popen(ssh, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as session:
        session.stdin.write(stdin)
        session.stdin.flush()
        records = []
        while not records or "armed" not in records[-1]:
            line = session.stdout.readline()
            assert line, "the session ended before the watchdog was armed"
            records.append(json.loads(line) if line.strip()[0] == "{" else {"pid": line})
        watchdog = records[-1]["armed"]["pid"]
        session.kill()  # the SSH session dies; the play goes on and ends; the watchdog stays
        session.wait(timeout=10)
    # the play's process sees its stdin end, ends its task and exits; the watchdog stays
    wait_until(lambda: vnetctl_pids(lab3, host.name) == [watchdog], 10,
               "the play's process ended, its watchdog alone left")  # fmt: skip
    assert Path(f"/proc/{watchdog}").exists()  # it outlived the session
    assert mtu(lab3, host.name) == 1300
    wait_until(lambda: mtu(lab3, host.name) == 1500, 15, "rolled back by the watchdog")
    collect = confirm_command("/usr/bin/python3", confirm.directory, "collect", 5)
    result = host_exec(lab3.name, host.name, ["sh", "-c", collect], input=confirm_stdin())
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["rolled_back"] is True and answer["after_task"] == 0
    assert leftovers(lab3, host.name) == [] and vnetctl_pids(lab3, host.name) == []
