"""The segment check: `vnetctl mesh check` on a playbook of OVS port groups probes every
VLAN between every pair of hosts that have it, at the VLAN's full MTU and at a small size,
on three lab hosts whose eth1 trunks the VLANs over the lab's segment s1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

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


def test_the_probes_pass_the_gate_of_a_bridge_with_port_security(lab, capsys, tmp_path):
    """A port group with port security closes its bridge's gate (vnet_ovs_portsec): the
    check's probe ports, made after the run, must still carry the VLANs."""
    inv = str(lab.inventory_path)
    for host in lab.host_names:  # undo the first test's changes by hand
        host_exec(lab.name, host, ["ip", "link", "set", "dev", "eth1", "mtu", "1500"])
    plays = yaml.safe_load(Path(PLAYBOOK).read_text())
    for task in plays[0]["tasks"]:
        if "ovs_port_group" in task:
            task["ovs_port_group"]["port_security"] = True
    secured = tmp_path / "ovs-port-groups-secured.yml"
    secured.write_text(yaml.safe_dump(plays))
    assert main(["run", str(secured), "-i", inv]) == 0
    capsys.readouterr()
    dump = ["ovs-ofctl", "--no-stats", "dump-flows", "br-pg"]
    gate = host_exec(lab.name, lab.host_names[0], dump).stdout
    assert "cookie=0x766e000067617465, priority=1 actions=drop" in gate

    code = main(["mesh", "check", str(secured), "-i", inv, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and {p["state"] for p in doc["pairs"]} == {"reachable"}, doc
    flows = host_exec(lab.name, lab.host_names[0], ["ovs-ofctl", "--names", "dump-flows", "br-pg"])
    assert "vnp" not in flows.stdout  # the probes' gate entries went with them
