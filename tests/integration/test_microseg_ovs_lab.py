"""Micro-segmentation on Open vSwitch as an operator runs it (issue 30): `vnetctl run` of
one playbook on two lab hosts with OVS (userspace datapath): the underlay bridge with
the VTEP address (as playbooks/vxlan-mesh-ovs.yml), a VXLAN mesh on OVS bridge br-ms,
and `security_groups` on it. VM-like guests (tests/integration/microseg_vms.py) are OVS
ports of br-ms on either host; the allow/deny matrix is test_microseg_lab.py's
(tests/integration/microseg_matrix.py), across the mesh. A second run changes nothing;
a flow deleted by hand is drift on that host only; a VM moved to the other host keeps
its policy."""

from __future__ import annotations

import time

import pytest

from tests.integration import microseg_vms as guests
from tests.integration.microseg_matrix import (
    EXPECTED,
    VMS,
    addr,
    groups_task,
    matrix,
    microseg_lab,
    run_play,
    vms_of,
)
from tests.labhosts import wait_until
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

BRIDGE = "br-ms"
PLACED = ("web-1", "app-1", "mgmt-1", "db-1")
OURS = "cookie=0x766e000000000000/0xffff000000000000"  # vnetctl's flows on a bridge


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with microseg_lab("mo", tmp_path_factory.mktemp("mo"), ovs=True) as state:
        yield state


def play(lab, tmp_path, placement: dict[str, list[str]], *extra) -> dict:
    """Underlay, mesh and groups on OVS; each host's `vms` from `placement`."""

    def vars_of(host):
        return {"vms": vms_of(placement, host),
                "vtep_address": f"192.168.77.{lab.host_names.index(host) + 1}"}  # fmt: skip

    tasks = [
        {"name": "underlay", "ovs_bridge": {"name": "br-underlay", "datapath_type": "netdev",
                                            "ports": [{"name": "eth1"}],
                                            "addresses": ["{{ vtep_address }}/24"]}},
        {"name": "overlay", "vxlan_mesh": {"name": "mo", "dataplane": "ovs",
                                           "ovs_datapath": "netdev", "vtep": "{{ vtep_address }}",
                                           "segments": [{"vni": 300, "bridge": BRIDGE,
                                                         "mtu": 1450}]}},
        groups_task(BRIDGE),
    ]  # fmt: skip
    return run_play(lab, tmp_path, vars_of, tasks, *extra)


def statuses(doc, host) -> dict[str, str]:
    return {r["resource"]: r["status"] for r in doc["results"] if r["host"] == host}


def status(doc, host):
    return next(s for r, s in statuses(doc, host).items() if r.startswith("security_groups"))


def place(lab, placement: dict[str, list[str]]) -> None:
    """Each VM of `placement` a port of br-ms on its host (made where missing)."""
    for host, vms in placement.items():
        for vm in vms:
            if host_exec(lab.name, host, ["ip", "link", "show", vm + "p"]).returncode != 0:
                guests.add_vm(lab, host, dict(VMS[vm], name=vm), BRIDGE, ovs=True)


def timed(what: str, times: dict, call):
    started = time.monotonic()
    out = call()
    times[what] = round(time.monotonic() - started, 1)
    return out


def test_the_matrix_holds_across_the_ovs_mesh_and_follows_a_moved_vm(lab, tmp_path):
    h1, h2 = lab.host_names
    placement = {h1: ["web-1", "app-1", "mgmt-1"], h2: ["db-1"]}
    times: dict[str, float] = {}
    doc = timed("first run", times, lambda: play(lab, tmp_path, placement))
    assert doc["code"] == 0, doc
    # the VMs start on the bridges the run made. On OVS a VM's flows name its port's
    # OpenFlow number, which exists only once the port does: until the next run (or
    # the libvirt hook) the port's frames meet the guard for its MAC, dropped
    place(lab, placement)
    with guests.listening(lab, "app-1", [8080]):
        assert guests.probe(lab, "web-1", "tcp", addr("app-1"), 8080) == "blocked"
    doc = timed("run with the ports", times, lambda: play(lab, tmp_path, placement))
    assert doc["code"] == 0, doc
    assert status(doc, h1) == status(doc, h2) == "changed", doc
    got = timed("matrix", times, lambda: matrix(lab))
    print("\n" + "\n".join(f"  {k:28} {v}" for k, v in got.items()))
    assert got == EXPECTED

    again = timed("second run", times, lambda: play(lab, tmp_path, placement))
    assert again["code"] == 0, again
    for host in (h1, h2):
        assert set(statuses(again, host).values()) == {"ok"}, statuses(again, host)

    # db-1 moves to h1 (its port made there, as a migrated VM's): dropped until the run
    guests.remove_vm(lab, "db-1", ovs_host=h2)
    moved = {h1: ["web-1", "app-1", "mgmt-1", "db-1"], h2: []}
    place(lab, moved)
    with guests.listening(lab, "app-1", [8080]):
        assert guests.probe(lab, "db-1", "tcp", addr("app-1"), 8080) == "blocked"
    doc = timed("run after the move", times, lambda: play(lab, tmp_path, moved))
    assert doc["code"] == 0, doc
    assert status(doc, h1) == status(doc, h2) == "changed", doc
    assert matrix(lab) == EXPECTED
    print(f"seconds: {times}")


def test_a_flow_deleted_by_hand_is_drift_on_that_host_only(lab, tmp_path):
    h1, h2 = lab.host_names
    placement = {h1: ["web-1", "app-1", "mgmt-1"], h2: ["db-1"]}
    for vm, host in (("db-1", h1), ("db-1", h2)):  # db-1 on h2 only, wherever it was
        guests.remove_vm(lab, vm, ovs_host=host)
    # its port goes with its namespace: nothing of the test's (a listener) still holds it
    wait_until(lambda: all(host_exec(lab.name, h, ["ip", "link", "show", "db-1p"]).returncode
                           for h in (h1, h2)), 10, "db-1p to go with its namespace")  # fmt: skip
    assert play(lab, tmp_path, placement)["code"] == 0
    place(lab, placement)
    assert play(lab, tmp_path, placement)["code"] == 0
    dump = host_exec(lab.name, h2, ["ovs-ofctl", "--no-stats", "dump-flows", BRIDGE, OURS])
    line = next(x for x in dump.stdout.splitlines() if "tp_dst=5432" in x)
    cookie = line.split("cookie=", 1)[1].split(",", 1)[0]
    done = host_exec(lab.name, h2, ["ovs-ofctl", "del-flows", BRIDGE, f"cookie={cookie}/-1"])
    assert done.returncode == 0, done.stderr
    assert matrix(lab)["app->db tcp/5432"] == "blocked"  # the allow is gone
    check = play(lab, tmp_path, placement, "--check")
    assert status(check, h2) == "changed" and status(check, h1) == "ok", check
    assert set(statuses(check, h1).values()) == {"ok"}, statuses(check, h1)
    fixed = play(lab, tmp_path, placement)
    assert status(fixed, h2) == "changed", fixed
    assert status(play(lab, tmp_path, placement, "--check"), h2) == "ok"
    assert matrix(lab) == EXPECTED


HOOK = "/etc/libvirt/hooks/qemu.d/vnetctl-security_groups"
NEW = {"name": "web-9", "mac": "52:54:00:30:00:19", "addresses": ["10.30.0.19"]}


def domain_xml(vm):
    return (f"<domain type='kvm'><name>{vm['name']}</name><devices><interface type='bridge'>"
            f"<mac address='{vm['mac']}'/><source bridge='{BRIDGE}'/>"
            "<virtualport type='openvswitch'/>"
            f"<target dev='{vm['name']}p'/></interface></devices></domain>")  # fmt: skip


def hook(lab, host, vm, operation):
    phase = "begin" if operation == "start" else "end"
    done = host_exec(lab.name, host, [HOOK, vm["name"], operation, phase, "-"],
                     input=domain_xml(vm))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_vm_started_after_the_run_gets_its_flows_from_the_libvirt_hook(lab, tmp_path):
    """db-2 is declared before it starts, web-9 in no inventory (group web by its name):
    libvirt's hook, run as the port is on br-ms and before qemu starts, writes their
    flows with the port's number; without it both would wait for the next run (db-2's
    frames dropped by the guard for its MAC, web-9 unfiltered)."""
    h1, h2 = lab.host_names
    placement = {h1: ["web-1", "app-1", "mgmt-1"], h2: ["db-1", "db-2"]}
    for vm in ("db-1", "db-2"):
        for host in (h1, h2):  # wherever the tests before left it
            guests.remove_vm(lab, vm, ovs_host=host)
    assert play(lab, tmp_path, placement)["code"] == 0
    place(lab, {h1: placement[h1], h2: ["db-1"]})
    assert play(lab, tmp_path, placement)["code"] == 0
    db2 = dict(VMS["db-2"], name="db-2")
    guests.add_vm(lab, h2, db2, BRIDGE, ovs=True)
    guests.add_vm(lab, h2, NEW, BRIDGE, ovs=True)
    try:
        hook(lab, h2, db2, "start")
        with guests.listening(lab, "db-2", [5432]):
            assert guests.probe(lab, "app-1", "tcp", addr("db-2"), 5432) == "pass"
            assert guests.probe(lab, "web-1", "tcp", addr("db-2"), 5432) == "blocked"
        with guests.listening(lab, "web-1", [80]):
            assert guests.probe(lab, "web-9", "tcp", addr("web-1"), 80) == "pass"  # no group
            hook(lab, h2, NEW, "start")
            assert guests.probe(lab, "web-9", "tcp", addr("web-1"), 80) == "blocked"
            again = play(lab, tmp_path, placement)
            assert status(again, h2) == "ok", again
            assert guests.probe(lab, "web-9", "tcp", addr("web-1"), 80) == "blocked"
            hook(lab, h2, NEW, "release")
            assert guests.probe(lab, "web-9", "tcp", addr("web-1"), 80) == "pass"
    finally:
        for vm in ("web-9", "db-2"):
            guests.remove_vm(lab, vm, ovs_host=h2)
