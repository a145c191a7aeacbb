"""vnetctl run against the lab: real sshd per host, real kernel bridges and MTU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vnetctl.cli.main import main
from vnetctl.lab import host_exec, start_sshd, stop_sshd

pytestmark = pytest.mark.lab

SITE = str(Path(__file__).parents[2] / "playbooks" / "site.yml")


def vnetctl_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["run", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def link(lab, host: str, name: str) -> dict | None:
    out = host_exec(lab.name, host, ["ip", "-j", "-d", "link", "show"]).stdout
    return next((item for item in json.loads(out) if item["ifname"] == name), None)


def changed_tasks(doc: dict) -> list[tuple[str, str]]:
    return sorted((r["host"], r["task"]) for r in doc["results"] if r["status"] == "changed")


def test_first_apply_changes_then_second_changes_nothing(lab3, fresh_hosts, capsys):
    inv = str(lab3.inventory_path)
    code, first = vnetctl_json(capsys, SITE, "-i", inv)
    assert code == 0, first
    assert len(changed_tasks(first)) == 2 * len(lab3.hosts)
    for host in lab3.host_names:
        bridge, uplink = link(lab3, host, "br-vm"), link(lab3, host, "eth1")
        assert bridge["mtu"] == 9000 and uplink["mtu"] == 9000
        assert uplink["master"] == "br-vm" and "UP" in bridge["flags"]
        assert link(lab3, host, "eth2")["mtu"] == 9000
    ifindex = link(lab3, lab3.host_names[0], "br-vm")["ifindex"]

    code, second = vnetctl_json(capsys, SITE, "-i", inv)
    assert code == 0 and changed_tasks(second) == []
    assert {r["status"] for r in second["results"]} == {"ok"}
    assert link(lab3, lab3.host_names[0], "br-vm")["ifindex"] == ifindex  # not recreated


def test_manual_change_shows_in_check_diff_with_the_exact_field(lab3, fresh_hosts, capsys):
    inv = str(lab3.inventory_path)
    assert vnetctl_json(capsys, SITE, "-i", inv)[0] == 0
    host = lab3.host_names[1]
    host_exec(lab3.name, host, ["ip", "link", "set", "dev", "eth1", "mtu", "1500"])

    code = main(["run", SITE, "-i", inv, "--check", "--diff"])
    text = capsys.readouterr().out
    assert code == 0
    assert f"changed: [{host}] VM bridge with its uplink" in text
    assert "ports_mtu.eth1: 1500 -> 9000" in text
    assert link(lab3, host, "eth1")["mtu"] == 1500  # check mode changed nothing

    _, doc = vnetctl_json(capsys, SITE, "-i", inv, "--check")
    drift = [(r["host"], r["changes"]) for r in doc["results"] if r["status"] == "changed"]
    assert drift == [(host, [{"field": "ports_mtu.eth1", "before": 1500, "after": 9000}])]


def test_limit_is_honoured(lab3, fresh_hosts, capsys):
    first, *others = lab3.host_names
    code, doc = vnetctl_json(capsys, SITE, "-i", str(lab3.inventory_path), "--limit", first)
    assert code == 0
    assert {r["host"] for r in doc["results"]} == {first}
    assert link(lab3, first, "br-vm") is not None
    assert all(link(lab3, h, "br-vm") is None for h in others)


def test_unreachable_host_reported_while_the_others_succeed(lab3, fresh_hosts, capsys):
    down = lab3.host_names[2]
    stop_sshd(lab3.name, down)
    try:
        code, doc = vnetctl_json(capsys, SITE, "-i", str(lab3.inventory_path), "--retries", "0")
    finally:
        start_sshd(lab3.name, down)
    assert code == 3
    assert set(doc["unreachable"]) == {down}
    # the host is unreachable once; its tasks never began
    statuses = [r["status"] for r in doc["results"] if r["host"] == down]
    assert statuses == ["unreachable", "not_started", "not_started"]
    assert doc["stats"][down] == {"unreachable": 1, "not_started": 2}
    for host in lab3.host_names[:2]:
        assert doc["stats"][host]["changed"] == 2
        assert link(lab3, host, "br-vm") is not None


def test_wrong_host_key_is_refused(lab3, fresh_hosts, capsys, tmp_path):
    """known_hosts holding another host's key for h1: refused, even with accept-new."""
    h1, h2 = lab3.hosts[0], lab3.hosts[1]
    lines = Path(lab3.known_hosts_path).read_text().splitlines()
    key_of_h2 = next(line.split(" ", 1)[1] for line in lines if line.startswith(h2.address + " "))
    forged = tmp_path / "known_hosts"
    forged.write_text(f"{h1.address} {key_of_h2}\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        Path(lab3.inventory_path).read_text().replace(str(lab3.known_hosts_path), str(forged))
    )
    accept = ["--accept-new-host-keys"]
    paramiko = ["--transport", "paramiko"]
    for extra in ([], accept, paramiko, paramiko + accept):
        code, doc = vnetctl_json(capsys, SITE, "-i", str(inventory), "--limit", h1.name, *extra)
        assert code == 3
        # a changed key is not an unknown one: said plainly, and never replaced
        reason = doc["unreachable"][h1.name]
        assert f"host key for {h1.address} has CHANGED" in reason and "attack" in reason
    assert link(lab3, h1.name, "br-vm") is None


def test_unknown_host_accepted_and_recorded_only_when_asked(lab3, fresh_hosts, capsys, tmp_path):
    h1 = lab3.hosts[0]
    empty = tmp_path / "known_hosts"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        Path(lab3.inventory_path).read_text().replace(str(lab3.known_hosts_path), str(empty))
    )
    code, doc = vnetctl_json(capsys, SITE, "-i", str(inventory), "--limit", h1.name)
    assert code == 3 and "host key verification failed" in doc["unreachable"][h1.name]
    code, _ = vnetctl_json(
        capsys, SITE, "-i", str(inventory), "--limit", h1.name, "--accept-new-host-keys"
    )
    assert code == 0
    assert empty.read_text().startswith(h1.address + " ssh-ed25519 ")


def test_paramiko_transport_applies_the_same_playbook(lab3, fresh_hosts, capsys):
    inv = str(lab3.inventory_path)
    code, first = vnetctl_json(capsys, SITE, "-i", inv, "--transport", "paramiko")
    assert code == 0 and len(changed_tasks(first)) == 2 * len(lab3.hosts)
    code, second = vnetctl_json(capsys, SITE, "-i", inv, "--transport", "paramiko")
    assert code == 0 and changed_tasks(second) == []


def test_kernel_refusal_mid_batch_is_rolled_back(lab3, fresh_hosts, capsys, tmp_path):
    """A bridge cannot be a port of another bridge: the kernel refuses after earlier
    lines of the same batch took effect; the module rolls them back."""
    host = lab3.host_names[0]
    host_exec(lab3.name, host, ["ip", "link", "add", "br-other", "type", "bridge"])
    book = tmp_path / "loop.yml"
    book.write_text(
        "- hosts: all\n  tasks:\n    - linux_bridge: {name: br-vm, ports: [eth1, br-other],"
        " mtu: 9000}\n"
    )
    code, doc = vnetctl_json(capsys, str(book), "-i", str(lab3.inventory_path), "--limit", host)
    assert code == 2
    assert "(rolled back)" in doc["results"][0]["msg"]
    assert link(lab3, host, "br-vm") is None
    assert link(lab3, host, "eth1")["mtu"] == 1500 and "master" not in link(lab3, host, "eth1")


@pytest.mark.skipif(not shutil.which("sshd", path="/usr/sbin"), reason="needs sshd")
def test_facts_command_prints_each_hosts_links(lab3, capsys):
    code = main(["facts", "-i", str(lab3.inventory_path)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and set(doc["hosts"]) == set(lab3.host_names)
    names = {item["ifname"] for item in doc["hosts"][lab3.host_names[0]]["links"]}
    assert {"lo", "eth0", "eth1", "eth2"} <= names
