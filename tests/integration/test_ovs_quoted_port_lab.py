"""Port security on an OVS bridge that carries a VXLAN mesh tunnel port (vx300-xxxx):
`ovs-ofctl --names dump-flows` prints that name quoted ("vx300-274d": OVS quotes every
name but a letter followed by letters and digits), and no batch line may hold a quote.
Before: the gate never matched its wanted state ("did not converge: gate.allowed is
['\\"vx300-274d\\"', ...]") and the rollback was refused ("rollback incomplete").

Two hosts with their own OVS (userspace datapath), the mesh playbook's bridges; the
guarded port is a veth of the test's own (oq1p, its guest end oq1) on host 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.test_host_faults import small_fs
from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh-ovs.yml")
BRIDGE, PORT, MAC = "br-ovs300", "oq1p", "52:54:00:79:00:01"
GROUP = {"name": "web", "bridge": BRIDGE, "ports": [PORT],
         "addresses": [{"port": PORT, "mac": MAC}]}  # fmt: skip


def sh(lab, host: str, *argv: str) -> str:
    done = host_exec(lab.name, host, list(argv))
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("oq", tmp_path_factory.mktemp("oq"), hosts=2, ovs=True) as state:
        code = main(["run", MESH, "-i", str(state.inventory_path), "--format", "json"])
        assert code == 0
        host = state.host_names[0]
        sh(state, host, "ip", "link", "add", "oq1", "type", "veth", "peer", "name", PORT)
        sh(state, host, "ip", "link", "set", "dev", "oq1", "address", MAC, "up")
        sh(state, host, "ovs-vsctl", "add-port", BRIDGE, PORT)
        yield state


def run(capsys, lab, tmp_path, code=0) -> dict:
    capsys.readouterr()
    path = tmp_path / "group.yml"
    tasks = [{"name": "web", "ovs_port_group": GROUP}]
    path.write_text(yaml.safe_dump([{"hosts": lab.host_names[0], "tasks": tasks}]))
    got = main(["run", str(path), "-i", str(lab.inventory_path), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert got == code, doc
    return doc


def flows(lab) -> list[str]:
    out = sh(lab, lab.host_names[0], "ovs-ofctl", "--names", "--no-stats", "dump-flows", BRIDGE)
    return sorted(line.strip() for line in out.splitlines())


def test_port_security_beside_a_quoted_tunnel_port_converges_and_rolls_back_whole(
    lab, capsys, tmp_path
):
    host = lab.host_names[0]
    found = sh(lab, host, "ovs-vsctl", "--bare", "--columns=name", "find", "Interface",
               "external_ids:vnetctl-vni=300")  # fmt: skip
    (tunnel,) = found.split()
    assert "-" in tunnel  # a name OVS quotes
    before = flows(lab)

    # a forced failure after the bundle went in: the group's declaration cannot be written
    with small_fs(lab, host, size=8, free=0, where="/etc/vnetctl"):
        doc = run(capsys, lab, tmp_path, code=2)
    (result,) = doc["results"]
    with capsys.disabled():
        print("\nthe forced failure:", result["msg"])
    assert result["status"] == "failed" and "No space left on device" in result["msg"]
    assert result["msg"].endswith("(rolled back)"), result
    assert flows(lab) == before

    doc = run(capsys, lab, tmp_path)
    assert [r["status"] for r in doc["results"]] == ["changed"], doc
    now = flows(lab)
    assert any(f'in_port="{tunnel}" actions=NORMAL' in line for line in now)
    doc = run(capsys, lab, tmp_path)
    assert [r["status"] for r in doc["results"]] == ["ok"], doc
    assert flows(lab) == now
