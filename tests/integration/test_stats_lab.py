"""`vnetctl stats` on real lab hosts: every port's kernel counters and carrier changes
read in one pass, JSON valid by its schema, a Prometheus textfile whose carrier-changes
counter rises by two for each time a port goes down and up (what the flapping alert of
contrib/prometheus counts), and an unreachable host exits 3, named, the others read."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, start_sshd, stop_sshd

pytestmark = pytest.mark.lab
SCHEMA = Path(__file__).parents[2] / "vnetctl" / "output" / "schema" / "stats.schema.json"


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("sta", tmp_path_factory.mktemp("sta"), hosts=2) as state:
        yield state


def stats(lab, capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["stats", "-i", str(lab.inventory_path), *args])
    return code, capsys.readouterr().out


def carrier_changes(path: Path, host: str, port: str) -> float:
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            if s.name == "vnetctl_port_carrier_changes_total" and s.labels["host"] == host \
                    and s.labels["port"] == port:  # fmt: skip
                return s.value
    raise AssertionError(f"no carrier changes of {host} {port}")


def test_every_port_of_every_host_is_read_and_valid_by_the_schema(lab, capsys):
    code, out = stats(lab, capsys, "--format", "json")
    doc = json.loads(out)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert code == 0 and set(doc["hosts"]) == set(lab.host_names) and doc["errors"] == {}
    for host in lab.host_names:
        eth1 = doc["hosts"][host]["ports"]["eth1"]
        assert eth1["operstate"] == "UP" and eth1["tx_packets"] >= 0
        assert isinstance(eth1["carrier_changes"], int) and "lo" not in doc["hosts"][host]["ports"]


def test_a_port_flapping_three_times_adds_six_carrier_changes(lab, capsys, tmp_path):
    host, prom = lab.host_names[1], tmp_path / "vnetctl-stats.prom"
    assert stats(lab, capsys, "--format", "prometheus", "-o", str(prom))[0] == 0
    before = carrier_changes(prom, host, "eth1")
    for _ in range(3):
        for state in ("down", "up"):
            host_exec(lab.name, host, ["ip", "link", "set", "eth1", state], check=True)
            wait_until(lambda s=state: (s == "up") == ("state UP" in host_exec(
                lab.name, host, ["ip", "link", "show", "eth1"], check=True).stdout),
                10, f"eth1 {state}")  # fmt: skip
    assert stats(lab, capsys, "--format", "prometheus", "-o", str(prom))[0] == 0
    assert carrier_changes(prom, host, "eth1") - before == 6
    assert carrier_changes(prom, lab.host_names[0], "eth1") >= 0


def test_an_unreachable_host_is_named_and_exits_3_the_others_read(lab, capsys):
    down = lab.host_names[0]
    stop_sshd(lab.name, down)
    try:
        code, out = stats(lab, capsys, "--format", "json", "--retries", "0")
    finally:
        start_sshd(lab.name, down)
    doc = json.loads(out)
    assert code == 3 and set(doc["errors"]) == {down} and set(doc["hosts"]) == {lab.host_names[1]}


def test_open_vswitch_interfaces_have_their_statistics(lab_required, tmp_path, capsys):
    playbook = str(Path(__file__).parents[2] / "playbooks" / "ovs-port-groups.yml")
    with own_lab("sto", tmp_path, hosts=1, ovs=True) as ovs_lab:
        assert main(["run", playbook, "-i", str(ovs_lab.inventory_path)]) == 0
        code, out = stats(ovs_lab, capsys, "--format", "json")
    doc = json.loads(out)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    (host,) = doc["hosts"].values()
    eth1 = host["ovs"]["eth1"]
    assert code == 0 and eth1["link_state"] == "up" and eth1["statistics"]["rx_packets"] >= 0
    assert isinstance(eth1["link_resets"], int)


def test_vxlan_devices_count_their_peers_and_a_lost_one_shows(lab, capsys):
    mesh = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
    assert main(["run", mesh, "-i", str(lab.inventory_path)]) == 0
    code, out = stats(lab, capsys, "--format", "json")
    doc = json.loads(out)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    peers = {h: s["vxlan_peers"] for h, s in doc["hosts"].items()}
    assert code == 0 and all(len(devs) == 2 for devs in peers.values()), peers  # VNI 100, 200
    h1, h2 = lab.host_names
    (dev, remote) = next((d, p[0]) for d, p in sorted(peers[h1].items()))
    assert all(p == [remote] for p in peers[h1].values())  # h2's VTEP, on each segment
    host_exec(lab.name, h1, ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", dev,
                             "dst", remote], check=True)  # fmt: skip
    after = json.loads(stats(lab, capsys, "--format", "json")[1])["hosts"][h1]["vxlan_peers"]
    assert after[dev] == [] and all(p == [remote] for d, p in after.items() if d != dev)
    assert main(["run", mesh, "-i", str(lab.inventory_path)]) == 0  # the peer back
