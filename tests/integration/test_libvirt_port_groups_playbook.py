"""playbooks/libvirt-port-groups.yml on two lab hosts with their own libvirtd: the first
host's groups on a Linux bridge, the second's on Open vSwitch. Applied, applied again
(nothing changes), no drift; each host's libvirt networks hold what libvirt applies
there; a guest whose interface names group db on the OVS host is in VLAN 20 as its
port is made (libvirt's face), and the next run takes its port, named db1, into the
group's port security (vnetctl's face) without moving it; bandwidth on the Linux bridge
is refused, saying why, on this kernel."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labhosts import own_lab, wait_until
from vnetctl.catalog import Catalog
from vnetctl.cli.main import main
from vnetctl.lab import LabState
from vnetctl.lab.vm.domain_xml import Guest, Nic
from vnetctl.lab.vm.guests import LabGuests

pytestmark = pytest.mark.lab
PLAYBOOK = str(Path(__file__).parents[2] / "playbooks" / "libvirt-port-groups.yml")
Catalog().host_lib()
virtnet = sys.modules["vnet_libvirt_net"]


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory) -> Iterator[LabState]:
    with own_lab("lpg", tmp_path_factory.mktemp("lpg"), hosts=2, ovs=True, libvirt=True) as state:
        yield state


def run(capsys, lab: LabState, *more: str) -> tuple[int, list[dict]]:
    code = main(["run", PLAYBOOK, "-i", str(lab.inventory_path), "--format", "json", *more])
    results = json.loads(capsys.readouterr().out)["results"]
    return code, [r for r in results if r["index"] >= 0]


def networks(vms: LabGuests) -> dict[str, dict]:
    names = vms.virsh("net-list", "--all", "--name").split()
    return {n: virtnet.read_network(vms.virsh("net-dumpxml", n)) for n in names}


def groups(network: dict, field: str) -> dict:
    return {name: fields[field] for name, fields in network["portgroups"].items()}


def test_the_design_applies_on_a_linux_and_an_ovs_host_and_stays(lab, capsys):
    linux, ovs = (LabGuests(lab.name, h) for h in lab.host_names)
    code, results = run(capsys, lab)
    assert code == 0 and not [r for r in results if r["status"] == "failed"], results
    code, results = run(capsys, lab)
    assert code == 0 and {r["status"] for r in results} == {"ok"}, results
    code = main(["drift", PLAYBOOK, "-i", str(lab.inventory_path), "--no-history"])
    assert code == 0, capsys.readouterr().out
    capsys.readouterr()

    on_linux, on_ovs = networks(linux), networks(ovs)
    assert {n: (v["bridge"], v["virtualport"]) for n, v in on_linux.items()} == {
        "apps": ("br-apps", None), "storage": ("br-storage", None)}  # fmt: skip
    assert {n: (v["bridge"], v["virtualport"]) for n, v in on_ovs.items()} == {
        "apps": ("br-apps", "openvswitch"), "storage": ("br-storage", "openvswitch")}  # fmt: skip
    assert groups(on_ovs["apps"], "vlan") == {"web": 10, "db": 20, "lb": 30}
    assert groups(on_linux["apps"], "vlan") == {"web": None, "db": None, "lb": None}
    assert groups(on_ovs["storage"], "vlan") == {"storage": 40}
    for network in (on_linux["apps"], on_ovs["apps"]):
        assert groups(network, "default") == {"web": True, "db": False, "lb": False}
        assert groups(network, "filter") == {"web": "no-mac-spoofing", "db": "clean-traffic",
                                             "lb": None}  # fmt: skip
    web = on_ovs["apps"]["portgroups"]["web"]["bandwidth"]["outbound"]
    assert web == {"average": 12500, "peak": 25000, "burst": 1024}
    assert on_linux["apps"]["portgroups"]["web"]["bandwidth"]["outbound"]["average"] is None
    for vms, mtu in ((linux, "br-storage"), (ovs, "br-storage")):
        assert json.loads(vms.sh(f"ip -j link show {mtu}").stdout)[0]["mtu"] == 9000


def test_group_db_reaches_a_guest_by_portgroup_then_by_its_port_name(lab, capsys):
    assert run(capsys, lab)[0] == 0
    vms = LabGuests(lab.name, lab.host_names[1])
    guest = Guest("db1", Nic(network="apps", portgroup="db", tap="db1"),
                  addresses=("10.70.20.11/24",))  # fmt: skip
    with vms.running(guest):
        wait_until(lambda: "db1" in vms.sh("ovs-vsctl list-ports br-apps").stdout, 30, "db1")
        tag = vms.sh("ovs-vsctl get port db1 tag").stdout.strip()
        assert tag == "20"  # libvirt's face: as the port was made
        code, results = run(capsys, lab, "--limit", lab.host_names[1])
        db = next(r for r in results if r["task"] == "port groups by port name (OVS) (item=db)")
        assert code == 0 and db["status"] == "changed", results
        assert "db1" in db["diff"]["after"]["members"]  # vnetctl's face: by its name
        flows = vms.sh("ovs-ofctl dump-flows br-apps").stdout
        ofport = vms.sh("ovs-vsctl get interface db1 ofport").stdout.strip()
        assert f"in_port={ofport}" in flows or "in_port=db1" in flows, flows
        assert vms.sh("ovs-vsctl get port db1 tag").stdout.strip() == "20"
        assert "db1" in vms.sh("ovs-vsctl list-ports br-apps").stdout  # kept (db*: a VM port)


def test_bandwidth_on_the_linux_bridge_is_refused_on_this_kernel(lab, capsys):
    code, results = run(capsys, lab, "-e", "linux_shaping=true", "--limit", lab.host_names[0])
    failed = [r for r in results if r["status"] == "failed"]
    assert code == 2 and [r["task"] for r in failed] == ["the libvirt networks (Linux) (item=apps)"]
    assert "lacks CONFIG_NET_SCH_SFQ, CONFIG_NET_ACT_POLICE" in failed[0]["msg"]
    assert "Nothing was changed" in failed[0]["msg"]
