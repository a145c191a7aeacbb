"""Check mode plans a play's later tasks knowing what its earlier tasks would make
(vnet_upcoming): on a fresh host, port groups on the Linux and the Open vSwitch bridge
the same play creates are changes pending those bridges (not "bridge does not exist",
not `ok`), the host is left as it was; the real run applies them; a check then has
nothing pending."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

BRIDGE, OVS = "VM bridge on eth1", "OVS bridge on eth2"
PLAY = [{
    "name": "bridges and their port groups",
    "hosts": "all",
    "tasks": [
        {"name": BRIDGE, "linux_bridge": {"name": "br-ahead", "ports": ["eth1"]}},
        {"name": "web on the VM bridge",
         "port_group": {"name": "web", "bridge": "br-ahead", "ports": ["vnet*"]}},
        {"name": "its MTU", "link": {"name": "br-ahead", "mtu": 1400}},
        {"name": OVS, "ovs_bridge": {"name": "br-ahead-o", "ports": [{"name": "eth2"}]}},
        {"name": "app on the OVS bridge",
         "ovs_port_group": {"name": "app", "bridge": "br-ahead-o", "ports": ["vnet2*"],
                            "vlan": 20}},
    ],
}]  # fmt: skip


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("ca", tmp_path_factory.mktemp("ca"), hosts=1, ovs=True) as state:
        yield state


def the_host(lab) -> tuple[str, str]:
    """What a check must leave alone: the links and the OVS bridges."""
    host = lab.host_names[0]
    links = host_exec(lab.name, host, ["ip", "-br", "link", "show"], check=True).stdout
    bridges = host_exec(lab.name, host, ["ovs-vsctl", "list-br"], check=True).stdout
    return links, bridges


def run_json(capsys, *argv) -> tuple[int, dict]:
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_check_plans_port_groups_on_the_bridges_the_play_makes(lab, capsys, tmp_path):
    book = tmp_path / "ahead.yml"
    book.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    inv = str(lab.inventory_path)
    before = the_host(lab)

    code, doc = run_json(capsys, "run", str(book), "-i", inv, "--check", "--diff",
                         "--detailed-exitcode")  # fmt: skip
    results = {r["task"]: r for r in doc["results"]}
    assert code == 2, doc  # changes would be made; nothing failed
    assert {r["status"] for r in results.values()} == {"changed"}, doc
    for task, after in (("web on the VM bridge", BRIDGE), ("its MTU", BRIDGE),
                        ("app on the OVS bridge", OVS)):  # fmt: skip
        assert f"after task '{after}' creates" in results[task]["msg"], results[task]
    assert "bridge br-ahead " in results["web on the VM bridge"]["msg"]
    assert "Open vSwitch bridge br-ahead-o" in results["app on the OVS bridge"]["msg"]
    assert the_host(lab) == before  # check mode changed nothing
    assert run_json(capsys, "run", str(book), "-i", inv, "--check")[0] == 0  # nothing failed

    code, doc = run_json(capsys, "drift", str(book), "-i", inv, "--no-history")
    assert code == 2
    missing = {(i["resource"], i["kind"]) for h in doc["hosts"] for i in h["items"]}
    assert ("port_group web", "missing") in missing and ("port group app", "missing") in missing

    assert main(["run", str(book), "-i", inv]) == 0
    capsys.readouterr()
    code, doc = run_json(capsys, "run", str(book), "-i", inv, "--check", "--detailed-exitcode")
    assert code == 0, doc
    assert {r["status"] for r in doc["results"]} == {"ok"}, doc
    assert not any("pending" in r["data"] for r in doc["results"])
