"""VXLAN meshes on Open vSwitch: a 4-host lab, each host with its own ovsdb-server and
ovs-vswitchd (userspace datapath), real tunnels, traffic across the overlay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, lab_status

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh-ovs.yml")


@pytest.fixture(scope="module")
def ovs_lab(lab_required, tmp_path_factory):
    with own_lab("vo", tmp_path_factory.mktemp("vo"), hosts=4, ovs=True) as state:
        yield state


def test_every_host_runs_its_own_ovs_daemons(ovs_lab):
    status = lab_status(ovs_lab.name)
    assert [h.ovs_alive for h in status.hosts] == [True] * 4 and status.healthy
    # each host's database is its own: a bridge made on one is unknown to another
    h1, h2 = ovs_lab.host_names[:2]
    made = host_exec(ovs_lab.name, h1, ["ovs-vsctl", "add-br", "br-only-h1"])
    assert made.returncode == 0, made.stderr
    assert host_exec(ovs_lab.name, h2, ["ovs-vsctl", "br-exists", "br-only-h1"]).returncode == 2
    host_exec(ovs_lab.name, h1, ["ovs-vsctl", "del-br", "br-only-h1"], check=True)


def run(capsys, *argv) -> tuple[int, dict]:
    code = main(["run", MESH, "-i", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def tunnel_peers(lab, host: str, vni: int) -> set[str]:
    out = host_exec(
        lab.name,
        host,
        [
            "ovs-vsctl",
            "--format=json",
            "--data=json",
            "--columns=options",
            "find",
            "Interface",
            f"external_ids:vnetctl-vni={vni}",
        ],
    ).stdout
    rows = json.loads(out)["data"]
    return {dict(row[0][1])["remote_ip"] for row in rows}


def test_ovs_mesh_reaches_across_hosts_and_follows_the_group(ovs_lab, capsys):
    """The playbook alone, on hosts as `lab up --ovs` made them: it declares its underlay
    bridge (eth1, the VTEP address) and the mesh over it, in one run."""
    inv = str(ovs_lab.inventory_path)
    code, doc = run(capsys, inv)
    assert code == 0, doc
    code, doc = run(capsys, inv)
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}

    code = main(["mesh", "check", MESH, "-i", inv, "--format", "json"])
    check = json.loads(capsys.readouterr().out)
    assert code == 0, check
    assert len(check["pairs"]) == 2 * 4 * 3
    assert {p["state"] for p in check["pairs"]} == {"reachable"}

    h1, h4 = ovs_lab.host_names[0], ovs_lab.host_names[3]
    # the playbook's VTEP: 192.168.77.N, N the last number of the management address
    vtep = {h.name: "192.168.77." + h.address.split(".")[-1] for h in ovs_lab.hosts}
    assert tunnel_peers(ovs_lab, h1, 300) == {vtep[h] for h in ovs_lab.host_names[1:]}
    code, doc = run(capsys, inv, "-e", f"mesh_members=all:!{h4}", "--limit", f"!{h4}")
    assert code == 0, doc
    for host in ovs_lab.host_names[:3]:
        assert vtep[h4] not in tunnel_peers(ovs_lab, host, 300)
        assert vtep[h4] not in tunnel_peers(ovs_lab, host, 400)
    assert run(capsys, inv)[0] == 0
    assert tunnel_peers(ovs_lab, h1, 400) == {vtep[h] for h in ovs_lab.host_names[1:]}
