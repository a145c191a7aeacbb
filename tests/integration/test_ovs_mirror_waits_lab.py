"""An ovs_bridge mirror whose output port is a VM's port that is not there yet waits:
the rest of the bridge (its bond) is applied whole, the run warns, drift lists the
mirror as missing, and the run after the port appears makes it (traffic then reaches
the port). A mirror naming a port the task does not declare is refused before any
change, saying what to declare. Real Open vSwitch (userspace datapath)."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

BRIDGE = {
    "name": "br-mw",
    "bonds": [{"name": "up0", "members": ["eth1", "eth2"], "mode": "active-backup"}],
    "ports": [{"name": "ids0", "type": "vm"}],
    "addresses": ["198.18.5.1/24"],
    "mirrors": [{"name": "ids", "select_all": True, "output_port": "ids0"}],
}


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("mw", tmp_path_factory.mktemp("mw"), hosts=1, ovs=True) as state:
        yield state


def on_host(lab, *argv: str, check: bool = True) -> str:
    return host_exec(lab.name, lab.host_names[0], list(argv), check=check).stdout


def play(path, bridge: dict) -> str:
    path.write_text(yaml.safe_dump([{"hosts": "all", "tasks": [
        {"name": "IDS bridge", "ovs_bridge": bridge}]}]))  # fmt: skip
    return str(path)


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_mirror_waits_for_its_vm_port_and_the_bond_is_applied(lab, capsys, tmp_path):
    book, inv = play(tmp_path / "ids.yml", BRIDGE), str(lab.inventory_path)
    code, doc = run_json(capsys, "run", book, "-i", inv)
    (result,) = doc["results"]
    assert code == 0 and result["status"] == "changed", result
    assert list(result["data"]["waiting"]) == ["mirrors.ids"]
    assert "output port ids0" in result["data"]["waiting"]["mirrors.ids"]
    assert "up0" in on_host(lab, "ovs-vsctl", "list-ports", "br-mw").split()
    assert on_host(lab, "ovs-vsctl", "--columns=name", "list", "mirror").strip() == ""

    main(["run", book, "-i", inv])  # the console says it, every run, until it is made
    assert "waiting: mirrors.ids waits for its output port ids0" in capsys.readouterr().out
    code, doc = run_json(capsys, "drift", book, "-i", inv, "--no-history")
    items = [(i["kind"], i["field"]) for h in doc["hosts"] for i in h["items"]]
    assert code == 2 and items == [("missing", "mirrors.ids")], doc

    on_host(lab, "ip", "link", "add", "ids0", "type", "veth", "peer", "name", "ids0p")
    for end in ("ids0", "ids0p"):  # up, as libvirt sets a VM's port: the bridge does not
        on_host(lab, "ip", "link", "set", "dev", end, "up")
    code, doc = run_json(capsys, "run", book, "-i", inv)
    (result,) = doc["results"]
    assert code == 0 and "waiting" not in result["data"], result
    port = on_host(lab, "ovs-vsctl", "get", "port", "ids0", "_uuid").strip()
    assert on_host(lab, "ovs-vsctl", "get", "mirror", "ids", "output_port").strip() == port

    def mirrored() -> int:
        return int(on_host(lab, "cat", "/sys/class/net/ids0p/statistics/rx_packets"))

    before = mirrored()
    # ARP requests for an address no one holds leave the bridge's own port: mirrored
    on_host(lab, "ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.5.2", check=False)
    wait_until(lambda: mirrored() >= before + 1, 10, "mirrored frames on ids0")
    code, doc = run_json(capsys, "drift", book, "-i", inv, "--no-history")
    assert code == 0, doc

    on_host(lab, "ovs-vsctl", "del-port", "br-mw", "ids0")  # the IDS VM stops: libvirt
    on_host(lab, "ip", "link", "del", "dev", "ids0")  # takes its port off, its tap goes
    code, doc = run_json(capsys, "run", book, "-i", inv)
    (result,) = doc["results"]
    assert code == 0 and list(result["data"]["waiting"]) == ["mirrors.ids"], result
    assert on_host(lab, "ovs-vsctl", "--columns=name", "list", "mirror").split() == [
        "name", ":", "ids"]  # kept as it is while it waits, not removed  # fmt: skip


def test_a_mirror_of_an_undeclared_port_is_refused_before_any_change(lab, capsys, tmp_path):
    bridge = dict(BRIDGE, name="br-mx", bonds=[], ports=[], addresses=[])
    code, doc = run_json(capsys, "run", play(tmp_path / "typo.yml", bridge), "-i",
                         str(lab.inventory_path))  # fmt: skip
    (result,) = doc["results"]
    assert code == 2 and result["status"] == "failed"
    assert "declare it in ports" in result["msg"] and "{name: ids0, type: vm}" in result["msg"]
    assert "br-mx" not in on_host(lab, "ovs-vsctl", "list-br").split()
