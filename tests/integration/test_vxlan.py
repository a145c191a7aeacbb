"""VXLAN meshes on a 4-host lab: real kernel VXLAN devices, traffic across the overlay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")


@pytest.fixture(scope="module")
def lab4(lab_required, tmp_path_factory):
    with own_lab("vx", tmp_path_factory.mktemp("vx"), hosts=4) as state:
        yield state


def run(capsys, *argv) -> tuple[int, dict | str]:
    code = main(["run", MESH, *argv, "--format", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else err


def fdb_peers(lab, host: str, device: str) -> set[str]:
    out = host_exec(lab.name, host, ["bridge", "-j", "fdb", "show", "dev", device]).stdout
    return {e["dst"] for e in json.loads(out or "[]") if e.get("mac") == "00:00:00:00:00:00"}


def ping(lab, host: str, address: str, size: int) -> bool:
    argv = ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", str(size), address]
    return host_exec(lab.name, host, argv).returncode == 0


def test_mesh_carries_traffic_at_full_mtu_and_reapplies_as_noop(lab4, capsys):
    inv = str(lab4.inventory_path)
    code, doc = run(capsys, "-i", inv)
    assert code == 0, doc
    assert doc["stats"][lab4.host_names[0]]["changed"] == 1
    for i, host in enumerate(lab4.host_names, start=1):
        for vni in (100, 200):
            host_exec(
                lab4.name,
                host,
                ["ip", "addr", "add", f"192.168.{vni}.{i}/24", "dev", f"br-vx{vni}"],
            )
    first = lab4.host_names[0]
    for i in range(2, 5):
        assert ping(lab4, first, f"192.168.100.{i}", 1450 - 28)
        assert ping(lab4, first, f"192.168.200.{i}", 56)
    assert not ping(lab4, first, "192.168.100.2", 1450 - 27)  # DF: one byte too many

    code, doc = run(capsys, "-i", inv)
    assert code == 0 and all(r["status"] == "ok" for r in doc["results"])


def test_host_leaving_and_rejoining_the_group(lab4, capsys):
    inv, h1, h4 = str(lab4.inventory_path), lab4.host_names[0], lab4.host_names[3]
    h4_vtep = lab4.hosts[3].address
    assert run(capsys, "-i", inv)[0] == 0
    assert h4_vtep in fdb_peers(lab4, h1, "vxlan100")

    code, doc = run(capsys, "-i", inv, "-e", f"mesh_members=all:!{h4}", "--limit", f"!{h4}")
    assert code == 0, doc
    for host in lab4.host_names[:3]:
        assert h4_vtep not in fdb_peers(lab4, host, "vxlan100")
        assert h4_vtep not in fdb_peers(lab4, host, "vxlan200")
        changes = next(r["changes"] for r in doc["results"] if r["host"] == host)
        assert {c["field"] for c in changes} == {"segments.100.peers", "segments.200.peers"}

    assert run(capsys, "-i", inv)[0] == 0
    assert all(h4_vtep in fdb_peers(lab4, h, "vxlan200") for h in lab4.host_names[:3])


def mesh_check(capsys, lab) -> tuple[int, dict]:
    code = main(["mesh", "check", MESH, "-i", str(lab.inventory_path), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_mesh_check_reports_broken_pairs_and_mtu_problems(lab4, capsys):
    assert run(capsys, "-i", str(lab4.inventory_path))[0] == 0
    code, doc = mesh_check(capsys, lab4)
    assert code == 0, doc
    assert len(doc["pairs"]) == 2 * 4 * 3
    assert {p["state"] for p in doc["pairs"]} == {"reachable"}

    h2, h3 = lab4.host_names[1], lab4.host_names[2]
    host_exec(lab4.name, h2, ["ip", "link", "del", "vxlan100"])
    code, doc = mesh_check(capsys, lab4)
    assert code == 2
    broken = {
        (p["source"], p["target"])
        for p in doc["pairs"]
        if p["vni"] == 100 and p["state"] == "unreachable"
    }
    assert broken == {(h, h2) for h in lab4.host_names if h != h2} | {
        (h2, h) for h in lab4.host_names if h != h2
    }
    assert all(p["state"] == "reachable" for p in doc["pairs"] if p["vni"] == 200)

    host_exec(lab4.name, h3, ["ip", "link", "set", "dev", "eth0", "mtu", "1400"])
    try:
        code, doc = mesh_check(capsys, lab4)
    finally:
        host_exec(lab4.name, h3, ["ip", "link", "set", "dev", "eth0", "mtu", "1500"])
    assert code == 2
    vni200 = {(p["source"], p["target"]): p["state"] for p in doc["pairs"] if p["vni"] == 200}
    assert vni200[(lab4.host_names[0], h3)] == "mtu-broken"
    assert vni200[(lab4.host_names[0], lab4.host_names[3])] == "reachable"
    probes = host_exec(lab4.name, h3, ["ip", "netns", "list"]).stdout
    assert "vnetctl-probe" not in probes  # the check cleaned up after itself


def test_underlay_mtu_too_small_is_refused_before_any_host_is_touched(lab4, capsys):
    for host in lab4.host_names:
        host_exec(lab4.name, host, ["ip", "link", "del", "vxlan100"])
    code, err = run(capsys, "-i", str(lab4.inventory_path), "-e", "overlay_mtu=1480")
    assert code == 1
    assert (
        "overlay mtu 1480 + 50 (VXLAN over IPv4) = 1530 exceeds the underlay eth0 mtu 1500" in err
    )
    for host in lab4.host_names:
        links = json.loads(host_exec(lab4.name, host, ["ip", "-j", "link"]).stdout)
        assert "vxlan100" not in {link["ifname"] for link in links}
