"""The segment check: `vnetctl mesh check` on a playbook of OVS port groups probes every
VLAN between every pair of hosts that have it, at the VLAN's full MTU and at a small size,
on three lab hosts whose eth1 trunks the VLANs over the lab's segment s1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

PLAYBOOK = str(Path(__file__).parents[2] / "playbooks" / "ovs-port-groups.yml")


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("os", tmp_path_factory.mktemp("os"), hosts=3, ovs=True) as state:
        yield state


def check(capsys, lab) -> tuple[int, dict]:
    code = main(["mesh", "check", PLAYBOOK, "-i", str(lab.inventory_path), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def states(doc: dict, vlan: int) -> dict[tuple[str, str], str]:
    return {(p["source"], p["target"]): p["state"] for p in doc["pairs"] if p.get("vlan") == vlan}


def test_every_vlan_between_every_pair_then_a_missing_trunk_and_a_small_mtu(lab, capsys):
    inv = str(lab.inventory_path)
    assert main(["run", PLAYBOOK, "-i", inv]) == 0
    capsys.readouterr()
    assert main(["run", PLAYBOOK, "-i", inv, "--format", "json"]) == 0
    assert {r["status"] for r in json.loads(capsys.readouterr().out)["results"]} == {"ok"}

    code, doc = check(capsys, lab)
    assert code == 0, doc
    assert len(doc["pairs"]) == 2 * 3 * 2  # two VLANs, 3 hosts: 6 ordered pairs each
    assert {p["state"] for p in doc["pairs"]} == {"reachable"}

    h1, h2, h3 = lab.host_names
    done = host_exec(lab.name, h3, ["ovs-vsctl", "set", "port", "eth1", "trunks=10"])
    assert done.returncode == 0, done.stderr  # VLAN 20 no longer on h3's trunk
    done = host_exec(lab.name, h2, ["ip", "link", "set", "dev", "eth1", "mtu", "1400"])
    assert done.returncode == 0, done.stderr  # h2's uplink too small for 1500-byte frames
    code, doc = check(capsys, lab)
    assert code == 2, doc
    vlan10, vlan20 = states(doc, 10), states(doc, 20)
    assert vlan20[(h1, h3)] == vlan20[(h3, h1)] == vlan20[(h2, h3)] == "unreachable"
    assert vlan20[(h1, h2)] == "mtu-broken" and vlan10[(h1, h3)] == "reachable"
    assert vlan10[(h1, h2)] == vlan10[(h3, h2)] == "mtu-broken"
    # the probes are gone: nothing but what the playbook made is left on the bridge
    ports = host_exec(lab.name, h1, ["ovs-vsctl", "list-ports", "br-pg"]).stdout.split()
    assert ports == ["eth1"]

    code = main(["mesh", "check", PLAYBOOK, "-i", inv])
    text = capsys.readouterr().out
    assert code == 2 and "VLAN 20 (MTU 1500)" in text and "MTU" in text and "--" in text
