"""libvirt_network on a lab host's own libvirtd (`lab up --libvirt`), on a Linux bridge
and an Open vSwitch bridge: check mode changes nothing, networks are defined, redefined
and removed; every field changed by hand with virsh is drift and a run repairs it; a
snapshot written back makes the same networks; a task whose last step fails leaves the
previous definition; a guest started on port group db gets its VLAN tag, and keeps its
port while its network changes under it; without libvirtd the task says so."""

from __future__ import annotations

import json
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.test_ansible_compat import ansible_playbook, recap
from tests.labhosts import own_lab, wait_until
from vnetctl.catalog import Catalog
from vnetctl.cli.main import main
from vnetctl.lab import LabState, lab_up
from vnetctl.lab.vm.domain_xml import Guest, Nic
from vnetctl.lab.vm.guests import LabGuests

pytestmark = pytest.mark.lab
Catalog().host_lib()
virtnet = sys.modules["vnet_libvirt_net"]
BRIDGES = (
    "ip link add br-vm type bridge && ip link set br-vm up && ip link add br-b type bridge"
    " && for b in ovs-vm ovs-b; do ovs-vsctl add-br $b -- set bridge $b datapath_type=netdev"
    " && ip link set $b up; done"
)
GROUPS = [
    {"name": "web", "default": True, "vlan": 10},
    {"name": "db", "vlan": 20, "port_security": True,
     "bandwidth": {"inbound": {"average": 1000, "peak": 2000, "burst": 512}}},
    {"name": "trunk", "vlan": 10, "trunks": [20, 30], "vlan_mode": "native-untagged"},
    {"name": "lb", "trunks": [10, 20], "promiscuous": "accept", "forged_transmits": "accept"},
]  # fmt: skip
LINUX_GROUPS = [{"name": "web", "default": True}, {"name": "db", "port_security": True}]


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory) -> Iterator[tuple[LabState, LabGuests, Path]]:
    folder = tmp_path_factory.mktemp("lvn")
    with own_lab("lvn", folder, hosts=1, ovs=True, libvirt=True) as state:
        vms = LabGuests(state.name, state.host_names[0])
        vms.sh(BRIDGES)
        yield state, vms, folder


@pytest.fixture
def host(lab) -> Iterator[tuple[LabState, LabGuests, Path]]:
    """The lab, its libvirt networks all removed afterwards."""
    yield lab
    vms = lab[1]
    for name in vms.virsh("net-list", "--all", "--name").split():
        vms.remove_network(name)


def book(folder: Path, ovs_groups=GROUPS, ovsnet: dict | None = None, **lbnet) -> Path:
    tasks = [
        {"name": "lbnet", "libvirt_network": {"name": "lbnet", "bridge": "br-vm",
                                              "portgroups": LINUX_GROUPS, **lbnet}},
        {"name": "ovsnet", "libvirt_network": {"name": "ovsnet", "bridge": "ovs-vm",
                                               "portgroups": ovs_groups, **(ovsnet or {})}},
    ]  # fmt: skip
    path = folder / "networks.yml"
    path.write_text(yaml.safe_dump([{"hosts": "all", "tasks": tasks}], sort_keys=False))
    return path


def run(capsys, state: LabState, playbook: Path, *more: str) -> tuple[int, list[dict]]:
    code = main(["run", str(playbook), "-i", str(state.inventory_path), "--format", "json", *more])
    results = json.loads(capsys.readouterr().out)["results"]
    return code, [r for r in results if r["index"] >= 0]


def drift(capsys, state: LabState, playbook: Path) -> tuple[int, set[tuple[str, str]]]:
    """The exit code and each (resource, field) reported."""
    code = main(["drift", str(playbook), "-i", str(state.inventory_path), "--format", "json",
                 "--no-history"])  # fmt: skip
    items = json.loads(capsys.readouterr().out)["hosts"][0]["items"]
    return code, {(i["resource"], i["field"]) for i in items}


def model(vms: LabGuests, name: str, live: bool = False) -> dict:
    return virtnet.read_network(vms.virsh("net-dumpxml", name, *([] if live else ["--inactive"])))


def redefine(vms: LabGuests, name: str, edit) -> None:
    """The network's definition changed by hand (`edit(root)` on its XML) and defined
    again with virsh; the running network stays as it was."""
    root = ET.fromstring(vms.virsh("net-dumpxml", "--inactive", name))
    edit(root)
    vms.virsh("net-define", "/dev/stdin", input=ET.tostring(root, encoding="unicode"))


def by_hand_ovs(root: ET.Element) -> None:
    """One change per field of ovsnet's definition."""
    group = {g.get("name"): g for g in root.iterfind("portgroup")}
    group["web"].find("vlan/tag").set("id", "11")  # vlan
    ET.SubElement(group["lb"].find("vlan"), "tag", id="30")  # trunks
    group["trunk"].find("vlan/tag[@nativeMode]").set("nativeMode", "tagged")  # native
    group["db"].find("bandwidth/inbound").set("average", "900")  # bandwidth
    del group["web"].attrib["default"]  # the default group moves to lb
    group["lb"].set("default", "yes")
    marks = f"metadata/{virtnet.MARK_GROUPS}/{virtnet.MARK_GROUP}[@name='db']"
    root.find(marks).set("filter", "no-mac-spoofing")  # filter


def by_hand_linux(root: ET.Element) -> None:
    root.find("bridge").set("name", "br-b")  # bridge
    root.find("portgroup[@name='web']").set("trustGuestRxFilters", "yes")  # extra
    ET.SubElement(root, "virtualport", type="openvswitch")  # virtualport (none declared)


def test_check_mode_changes_nothing_then_networks_are_defined_redefined_and_removed(host, capsys):
    state, vms, folder = host
    code, results = run(capsys, state, book(folder), "--check")
    assert code == 0 and [r["msg"] for r in results] == ["would be created"] * 2
    assert vms.virsh("net-list", "--all", "--name").split() == []

    code, results = run(capsys, state, book(folder))
    assert code == 0 and [r["msg"] for r in results] == ["created"] * 2, results
    for name in ("lbnet", "ovsnet"):
        info = vms.virsh("net-info", name)
        assert "Active:         yes" in info and "Autostart:      yes" in info, info
    ovs, linux = model(vms, "ovsnet", live=True), model(vms, "lbnet", live=True)
    assert (ovs["virtualport"], linux["virtualport"]) == ("openvswitch", None)
    assert ovs["portgroups"]["web"]["vlan"] == 10 and ovs["portgroups"]["web"]["default"]
    assert ovs["portgroups"]["trunk"] == dict(ovs["portgroups"]["trunk"], vlan=10,
                                              trunks=[20, 30], native="untagged")  # fmt: skip
    assert ovs["portgroups"]["db"]["bandwidth"]["inbound"]["average"] == 1000
    assert linux["portgroups"]["db"]["filter"] == "clean-traffic"
    assert run(capsys, state, book(folder))[1][0]["status"] == "ok"

    changed = [dict(GROUPS[1], vlan=21), *GROUPS[:1], *GROUPS[2:3]]  # db's VLAN, no lb
    code, results = run(capsys, state, book(folder, changed))
    assert code == 0 and results[1]["status"] == "changed", results
    for live in (False, True):
        groups = model(vms, "ovsnet", live)["portgroups"]
        assert groups["db"]["vlan"] == 21 and "lb" not in groups

    code, results = run(capsys, state, book(folder, ovsnet={"state": "absent"}, state="absent"))
    assert code == 0 and [r["msg"] for r in results] == ["removed"] * 2, results
    assert vms.virsh("net-list", "--all", "--name").split() == []


def test_each_field_changed_by_hand_is_drift_and_a_run_repairs_it(host, capsys):
    state, vms, folder = host
    playbook = book(folder)
    assert run(capsys, state, playbook)[0] == 0
    made = {n: (model(vms, n), model(vms, n, live=True)) for n in ("lbnet", "ovsnet")}
    redefine(vms, "ovsnet", by_hand_ovs)
    vms.virsh("net-autostart", "ovsnet", "--disable")  # autostart
    redefine(vms, "lbnet", by_hand_linux)
    vms.virsh(
        "net-update",
        "lbnet",
        "modify",
        "portgroup",
        "/dev/stdin",
        "--live",
        input="<portgroup name='db'><bandwidth><outbound average='8'/></bandwidth></portgroup>",
    )  # next_start: the running network differs

    code, found = drift(capsys, state, playbook)
    ovs, linux = "libvirt network ovsnet", "libvirt network lbnet"
    wanted = {(ovs, f) for f in ("portgroups.web.vlan", "portgroups.lb.trunks",
                                 "portgroups.trunk.native", "portgroups.db.filter",
                                 "portgroups.db.bandwidth.inbound.average", "autostart",
                                 "portgroups.lb.default", "portgroups.web.default",
                                 "next_start")}  # fmt: skip
    wanted |= {(linux, f) for f in ("bridge", "extra", "virtualport", "next_start")}
    assert code == 2 and found == wanted, sorted(found ^ wanted)

    code, results = run(capsys, state, playbook)
    assert code == 0 and all(r["status"] == "changed" for r in results), results
    assert drift(capsys, state, playbook) == (0, set())
    for name, (config, live) in made.items():
        assert (model(vms, name), model(vms, name, live=True)) == (config, live), name


def test_a_snapshot_written_back_makes_the_same_networks(host, capsys, tmp_path):
    state, vms, folder = host
    assert run(capsys, state, book(folder))[0] == 0
    made = {n: model(vms, n) for n in ("lbnet", "ovsnet")}
    snap = tmp_path / "snapshot.yml"
    assert main(["snapshot", "-i", str(state.inventory_path), "-o", str(snap)]) == 0
    capsys.readouterr()
    tasks = [t for play in yaml.safe_load(snap.read_text()) for t in play["tasks"]]
    assert [t["name"] for t in tasks if "libvirt_network" in t] == [
        "libvirt network lbnet", "libvirt network ovsnet"]  # fmt: skip
    code, results = run(capsys, state, snap, "--check")
    assert code == 0 and all(r["status"] == "ok" for r in results), results
    for name in made:
        vms.remove_network(name)
    code, results = run(capsys, state, snap)
    assert code == 0 and [r["resource"] for r in results if r["status"] == "changed"] == [
        "libvirt network lbnet", "libvirt network ovsnet"]  # fmt: skip
    assert {n: model(vms, n) for n in made} == made


def test_a_task_whose_last_step_fails_leaves_the_previous_definition(host, capsys):
    """The task changes a group's VLAN (defined, then updated live) and switches autostart
    on, which libvirt cannot do (its autostart directory is a file): the definition and
    the running network are put back, then the task says "(rolled back)"."""
    state, vms, folder = host
    assert run(capsys, state, book(folder, ovsnet={"autostart": False}))[0] == 0
    before = model(vms, "ovsnet"), model(vms, "ovsnet", live=True)
    vms.sh("rm -r /etc/libvirt/qemu/networks/autostart "
           "&& touch /etc/libvirt/qemu/networks/autostart")  # fmt: skip
    try:
        changed = [dict(GROUPS[0], vlan=11), *GROUPS[1:]]
        code, results = run(capsys, state, book(folder, changed))
    finally:
        vms.sh("rm /etc/libvirt/qemu/networks/autostart")
    assert code == 2
    msg = results[1]["msg"]
    assert "cannot create autostart directory" in msg and msg.endswith("(rolled back)"), msg
    assert (model(vms, "ovsnet"), model(vms, "ovsnet", live=True)) == before
    assert "Autostart:      no" in vms.virsh("net-info", "ovsnet")


def ovs_tag(vms: LabGuests, port: str):
    rows = json.loads(vms.sh("ovs-vsctl -f json --columns=name,tag list port").stdout)["data"]
    return {row[0]: row[1] for row in rows}.get(port)


def test_a_guest_on_group_db_gets_its_tag_and_keeps_its_port_while_the_network_changes(
    host, capsys
):
    state, vms, folder = host
    assert run(capsys, state, book(folder))[0] == 0
    guest = Guest("db1", Nic(network="ovsnet", portgroup="db"), addresses=("10.70.20.11/24",))
    with vms.running(guest) as started:
        wait_until(lambda: vms.taps("db1"), 30, "db1's tap")
        tap = vms.taps("db1")[0]
        wait_until(lambda: ovs_tag(vms, tap) == 20, 30, f"{tap} in VLAN 20")
        tagged = time.monotonic() - started
        assert vms.virsh("net-port-list", "ovsnet", "--uuid").split() != []
        changed = [dict(GROUPS[1], vlan=21), *GROUPS[:1], *GROUPS[2:]]
        code, results = run(capsys, state, book(folder, changed))
        assert (
            code == 0
            and results[1]["status"] == "changed"
            and results[1]["diff"]["after"]["next_start"] == []
        )
        assert model(vms, "ovsnet", live=True)["portgroups"]["db"]["vlan"] == 21
        assert ovs_tag(vms, tap) == 20  # a port keeps what it attached with, until it restarts

        moved = book(folder, changed, ovsnet={"bridge": "ovs-b"})
        code, results = run(capsys, state, moved)
        assert code == 0 and results[1]["diff"]["after"]["next_start"] == ["bridge"], results
        assert vms.state("db1") == "running" and tap in vms.sh("ovs-vsctl list-ports ovs-vm").stdout
        assert model(vms, "ovsnet", live=True)["bridge"] == "ovs-vm"
        assert drift(capsys, state, moved) == (0, set())
    code, results = run(capsys, state, moved)  # no guest attached now: restarted
    assert code == 0 and results[1]["diff"]["after"]["next_start"] == [], results
    assert model(vms, "ovsnet", live=True)["bridge"] == "ovs-b"
    print(f"\nguest on ovsnet's group db: its port in VLAN 20 {tagged:.2f} s after virsh start")


def test_the_module_runs_unchanged_under_ansible_playbook(host, capsys):
    """ansible-playbook makes the networks; vnetctl then finds them as it would its own."""
    state, vms, folder = host
    playbook = book(folder)
    made = ansible_playbook(state, str(playbook))
    assert made.returncode == 0 and recap(made.stdout)["changed"] == 2, made.stdout + made.stderr
    code, results = run(capsys, state, playbook)
    assert code == 0 and {r["status"] for r in results} == {"ok"}, results
    assert model(vms, "ovsnet")["portgroups"]["db"]["vlan"] == 20


def test_without_libvirtd_the_task_fails_saying_so(host, capsys):
    state, _vms, folder = host
    lab_up(state.name, hosts=1, libvirt=False)
    try:
        code, results = run(capsys, state, book(folder))
    finally:
        lab_up(state.name, hosts=1, libvirt=True)
    assert code == 2 and "libvirtd does not answer at qemu:///system" in results[0]["msg"]
