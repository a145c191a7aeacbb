"""Micro-segmentation on two lab hosts joined by a VXLAN mesh (issue 30): VM-like guests
(namespaces of the test's own, tests/integration/microseg_vms.py) on each host's
overlay bridge, a three-tier policy (web, app, db, mgmt) resolved on the controller from
both hosts' `vms`, and real traffic: allowed flows pass both ways (the answer by state),
the others are dropped (TCP, UDP, ICMP, IPv6); a VM moved to the other host keeps its
policy; a VM declared before it starts is covered from its first frame; a rule changed
by hand and a membership change are drift."""

from __future__ import annotations

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
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

BRIDGE = "br-ms"


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with microseg_lab("ms", tmp_path_factory.mktemp("ms")) as state:
        yield state


def play(lab, tmp_path, placement: dict[str, list[str]], *extra) -> dict:
    """The mesh and the groups, each host's `vms` from `placement` (host -> VM names)."""
    tasks = [
        {"name": "overlay", "vxlan_mesh": {"name": "ms", "vtep_interface": "eth0",
                                           "segments": [{"vni": 300, "bridge": BRIDGE,
                                                         "mtu": 1450}]}},
        groups_task(BRIDGE),
    ]  # fmt: skip
    return run_play(lab, tmp_path, lambda host: {"vms": vms_of(placement, host)}, tasks, *extra)


def status(doc, host):
    return next(r["status"] for r in doc["results"] if r["host"] == host
                and r["resource"].startswith("security_groups"))  # fmt: skip


def test_the_policy_holds_across_the_mesh_and_follows_a_moved_vm(lab, tmp_path):
    h1, h2 = lab.host_names
    placement = {h1: ["web-1", "app-1", "mgmt-1"], h2: ["db-1"]}
    doc = play(lab, tmp_path, placement)
    assert doc["code"] == 0, doc
    for host, vms in placement.items():
        for vm in vms:
            guests.add_vm(lab, host, dict(VMS[vm], name=vm), BRIDGE)
    got = matrix(lab)
    print("\n" + "\n".join(f"  {k:28} {v}" for k, v in got.items()))
    assert got == EXPECTED

    again = play(lab, tmp_path, placement)
    assert again["code"] == 0 and status(again, h1) == status(again, h2) == "ok", again

    # db-1 moves to h1 (its port made there, as a migrated VM's): the same policy
    guests.remove_vm(lab, "db-1")
    moved = {h1: ["web-1", "app-1", "mgmt-1", "db-1"], h2: []}
    doc = play(lab, tmp_path, moved)
    assert doc["code"] == 0, doc
    guests.add_vm(lab, h1, dict(VMS["db-1"], name="db-1"), BRIDGE)
    assert matrix(lab) == EXPECTED


def test_a_vm_declared_before_it_starts_is_covered_from_its_first_frame(lab, tmp_path):
    """db-2 is declared (inventory) before its port exists; the run compiles its rules
    by MAC. The port comes up after the run and the very first packets are filtered."""
    h1, h2 = lab.host_names
    placement = {h1: ["web-1", "app-1", "mgmt-1"], h2: ["db-2"]}
    for vm in ("web-1", "app-1", "mgmt-1"):
        if host_exec(lab.name, h1, ["ip", "link", "show", vm + "p"]).returncode != 0:
            guests.add_vm(lab, h1, dict(VMS[vm], name=vm), BRIDGE)
    assert play(lab, tmp_path, placement)["code"] == 0
    guests.add_vm(lab, h2, dict(VMS["db-2"], name="db-2"), BRIDGE)
    with guests.listening(lab, "db-2", [5432]):
        assert guests.probe(lab, "web-1", "tcp", addr("db-2"), 5432) == "blocked"
        assert guests.probe(lab, "app-1", "tcp", addr("db-2"), 5432) == "pass"
    guests.remove_vm(lab, "db-2")


def test_a_rule_changed_by_hand_and_a_membership_change_are_drift(lab, tmp_path):
    """...and another tool's table is left as it was through every rewrite."""
    h1, h2 = lab.host_names
    placement = {h1: ["web-1", "app-1", "mgmt-1"], h2: ["db-1"]}
    theirs = "table inet theirs {\n\tchain c {\n\t\ttcp dport 9999 counter drop\n\t}\n}"
    done = host_exec(lab.name, h2, ["nft", "-f", "-"], input=theirs + "\n")
    assert done.returncode == 0, done.stderr
    assert play(lab, tmp_path, placement)["code"] == 0
    listed = host_exec(lab.name, h2, ["nft", "-a", "list", "table", "inet", "vnetctl_microseg"])
    handle = next(line.rsplit(" ", 1)[1] for line in listed.stdout.splitlines()
                  if "tcp dport 5432 accept" in line)  # fmt: skip
    chain = next(line.split()[1] for line in listed.stdout.splitlines()
                 if line.strip().startswith("chain in_"))  # fmt: skip
    edit = ["nft", "replace", "rule", "inet", "vnetctl_microseg", chain, "handle", handle,
            "tcp", "dport", "5433", "accept"]  # fmt: skip
    done = host_exec(lab.name, h2, edit)
    assert done.returncode == 0, done.stderr
    check = play(lab, tmp_path, placement, "--check")
    assert status(check, h2) == "changed" and status(check, h1) == "ok", check
    fixed = play(lab, tmp_path, placement)
    assert status(fixed, h2) == "changed"
    assert status(play(lab, tmp_path, placement, "--check"), h2) == "ok"
    # app-2 declared on h2: every member of db on h2 gets its address as a peer
    extra = {h1: placement[h1], h2: ["db-1"]}
    VMS["app-2"] = {"mac": "52:54:00:30:00:22", "addresses": ["10.30.0.22"]}
    try:
        check = play(lab, tmp_path, {**extra, h2: ["db-1", "app-2"]}, "--check")
    finally:
        del VMS["app-2"]
    assert status(check, h2) == "changed", check
    kept = host_exec(lab.name, h2, ["nft", "list", "table", "inet", "theirs"]).stdout
    assert "tcp dport 9999 counter packets 0 bytes 0 drop" in kept, kept


HOOK = "/etc/libvirt/hooks/qemu.d/vnetctl-security_groups"
NEW = {"name": "web-9", "mac": "52:54:00:30:00:19", "addresses": ["10.30.0.19"]}


def domain_xml(vm):
    return (f"<domain type='kvm'><name>{vm['name']}</name><devices><interface type='bridge'>"
            f"<mac address='{vm['mac']}'/><source bridge='{BRIDGE}'/>"
            f"<target dev='{vm['name']}p'/></interface></devices></domain>")  # fmt: skip


def test_a_vm_started_between_runs_joins_its_groups_from_the_libvirt_hook(lab, tmp_path):
    """web-9 is in no inventory: libvirt starts it on h2, vnetctl's hook matches its
    domain name to group web (`web-*`) and writes its rules before qemu runs; the next
    run keeps them; release removes them."""
    h1, h2 = lab.host_names
    placement = {h1: ["web-1", "app-1", "mgmt-1"], h2: ["db-1"]}
    guests.remove_vm(lab, "db-1")  # the first test moved it to h1
    assert play(lab, tmp_path, placement)["code"] == 0  # the bridges, run alone too
    for host, vms in placement.items():
        for vm in vms:
            if host_exec(lab.name, host, ["ip", "link", "show", vm + "p"]).returncode != 0:
                guests.add_vm(lab, host, dict(VMS[vm], name=vm), BRIDGE)
    assert play(lab, tmp_path, placement)["code"] == 0
    guests.add_vm(lab, h2, NEW, BRIDGE)
    try:
        with guests.listening(lab, "web-1", [80]):
            assert guests.probe(lab, "web-9", "tcp", addr("web-1"), 80) == "pass"  # no group yet
            start = host_exec(lab.name, h2, [HOOK, "web-9", "start", "begin", "-"],
                              input=domain_xml(NEW))  # fmt: skip
            assert start.returncode == 0, start.stderr
            # a web member now: its egress is app:8080 only
            assert guests.probe(lab, "web-9", "tcp", addr("web-1"), 80) == "blocked"
            again = play(lab, tmp_path, placement)
            assert status(again, h2) == "ok", again
            assert guests.probe(lab, "web-9", "tcp", addr("web-1"), 80) == "blocked"
            release = host_exec(lab.name, h2, [HOOK, "web-9", "release", "end", "-"],
                                input=domain_xml(NEW))  # fmt: skip
            assert release.returncode == 0, release.stderr
            assert guests.probe(lab, "web-9", "tcp", addr("web-1"), 80) == "pass"
    finally:
        guests.remove_vm(lab, "web-9")
