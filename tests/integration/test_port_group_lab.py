"""port_group on the lab's kernel (it has the bridge and nftables' bridge family): port
security with real frames from a raw AF_PACKET sender, isolation, and a rule deleted
by hand found and repaired. VM-like ports are veth pairs inside one lab host: the
guest end sends, the bridge end is the port. The frames never leave that host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

FRAMES = (Path(__file__).parent / "frames.py").read_text()
GUESTS = {f"vm{i}": f"52:54:00:77:00:0{i}" for i in (1, 2, 3)}


def sh(lab, host, *argv):
    return host_exec(lab.name, host, list(argv), check=True).stdout


@pytest.fixture
def vm_host(lab3, fresh_hosts):
    """Lab host 1 with three guest-like veth pairs (vmN, its port vmNp) and br-pg's ports
    free; everything made here is removed by name at the end."""
    host = lab3.host_names[0]
    for guest, mac in GUESTS.items():
        sh(lab3, host, "ip", "link", "add", guest, "type", "veth", "peer", "name", guest + "p")
        sh(lab3, host, "ip", "link", "set", "dev", guest, "address", mac, "up")
    yield host
    for guest in GUESTS:
        host_exec(lab3.name, host, ["ip", "link", "del", guest])
    host_exec(lab3.name, host, ["ip", "link", "del", "br-pg"])
    host_exec(lab3.name, host, ["nft", "delete", "table", "bridge", "vnetctl"])


def play(tmp_path, host, *groups):
    bridge = {"name": "br-pg", "ports": [g + "p" for g in GUESTS], "stp": False, "forward_delay": 0}
    tasks = [{"name": "bridge", "linux_bridge": bridge}]
    tasks += [{"name": "group " + g["name"], "port_group": dict(g, bridge="br-pg")} for g in groups]
    path = tmp_path / "port-groups.yml"
    path.write_text(yaml.safe_dump([{"name": "port groups", "hosts": host, "tasks": tasks}]))
    return str(path)


def run(capsys, lab, playbook, *extra):
    code = main(["run", playbook, "-i", str(lab.inventory_path), "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def frames(lab, host, send, listen):
    """{listening guest: [tags of the frames it received]}."""
    spec = {"send": send, "listen": listen, "count": 3}
    return json.loads(sh(lab, host, "python3", "-c", FRAMES, json.dumps(spec)))


def from_vm1(tag, mac=GUESTS["vm1"], ip=None):
    return {"dev": "vm1", "src": mac, "tag": tag, **({"kind": "ip4", "ip_src": ip} if ip else {})}


SECURE = {
    "name": "web",
    "ports": ["vm*p"],
    "port_security": True,
    "guests": [{"port": "vm1p", "mac": GUESTS["vm1"], "ips": ["10.77.0.1"]}]
    + [{"port": g + "p", "mac": GUESTS[g]} for g in ("vm2", "vm3")],
}


def test_port_security_drops_forged_sources_and_passes_the_guests_own(
    lab3, vm_host, tmp_path, capsys
):
    playbook = play(tmp_path, vm_host, SECURE)
    code, doc = run(capsys, lab3, playbook)
    assert code == 0, doc
    seen = frames(lab3, vm_host, [
        from_vm1("own-ip", ip="10.77.0.1"), from_vm1("forged-ip", ip="10.77.0.99"),
        from_vm1("forged-mac", mac="52:54:00:66:66:66", ip="10.77.0.1"),
    ], ["vm2", "vm3"])  # fmt: skip
    assert seen == {"vm2": ["own-ip"], "vm3": ["own-ip"]}

    code, again = run(capsys, lab3, playbook)
    assert code == 0 and {r["status"] for r in again["results"] if r["host"] == vm_host} == {"ok"}


def test_a_rule_deleted_by_hand_is_drift_and_the_next_run_puts_it_back(
    lab3, vm_host, tmp_path, capsys
):
    playbook = play(tmp_path, vm_host, SECURE)
    assert run(capsys, lab3, playbook)[0] == 0
    listing = sh(lab3, vm_host, "nft", "-a", "list", "chain", "bridge", "vnetctl", "guard")
    handle = next(
        line.rsplit(" ", 1)[-1] for line in listing.splitlines() if "ether saddr != @macs" in line
    )
    sh(lab3, vm_host, "nft", "delete", "rule", "bridge", "vnetctl", "guard", "handle", handle)
    forged = [from_vm1("forged-mac", mac="52:54:00:66:66:66", ip="10.77.0.1")]
    assert frames(lab3, vm_host, forged, ["vm2"]) == {"vm2": ["forged-mac"]}  # the hole is real

    code, check = run(capsys, lab3, playbook, "--check")
    assert code == 0
    drift = [c for r in check["results"] for c in r.get("changes", [])]
    assert [c["field"] for c in drift] == ["nft.rules"]
    assert "ether-source" in drift[0]["after"] and "ether-source" not in drift[0]["before"]

    assert run(capsys, lab3, playbook)[0] == 0
    assert frames(lab3, vm_host, forged, ["vm2"]) == {"vm2": []}


def test_isolated_ports_do_not_reach_one_another_but_reach_the_others(
    lab3, vm_host, tmp_path, capsys
):
    # port security off: the guests' MACs are not declared (the veths' own would be taken)
    isolated = {"name": "web", "ports": ["vm1p", "vm2p"], "isolated": True, "neigh_suppress": True,
                "port_security": False}  # fmt: skip
    infra = {"name": "infra", "ports": ["vm3p"], "port_security": False}
    playbook = play(tmp_path, vm_host, isolated, infra)
    code, doc = run(capsys, lab3, playbook)
    assert code == 0, doc
    port = json.loads(sh(lab3, vm_host, "ip", "-j", "-d", "link", "show", "dev", "vm1p"))[0]
    flags = port["linkinfo"]["info_slave_data"]
    assert flags["isolated"] and flags["neigh_suppress"]
    assert frames(lab3, vm_host, [from_vm1("hello")], ["vm2", "vm3"]) == {
        "vm2": [],  # isolated to isolated: never
        "vm3": ["hello"],
    }
