"""playbooks/site.yml on full-kernel guests: the VM bridge on a real virtio uplink with
jumbo frames end to end across the hosts' segment, link MTU within what the device
allows, a second apply that changes nothing, and drift after a change by hand."""

from __future__ import annotations

import pytest

from tests.vagrant.guests import ROOT, vnetctl

pytestmark = pytest.mark.vagrant

SITE = str(ROOT / "playbooks" / "site.yml")
# eth1 carries the underlay's address: the bridge gets eth2, the storage NIC is eth3
ON_GUESTS = ["-e", "vm_uplink=eth2", "-e", "storage_nic=eth3"]


def apply_site(capsys, inventory: str, *extra: str) -> dict:
    code, doc = vnetctl(capsys, "run", SITE, "-i", inventory, *ON_GUESTS, *extra)
    assert code == 0, doc
    return doc


def test_site_builds_bridges_with_jumbo_mtu_and_reapplies_as_a_noop(clean, inventory, capsys):
    doc = apply_site(capsys, inventory)
    assert {doc["stats"][g.name].get("changed") for g in clean} == {2}
    for guest in clean:
        links = guest.links()
        bridge = links["br-vm"]
        assert bridge["linkinfo"]["info_kind"] == "bridge", guest.name
        assert bridge["mtu"] == 9000 and bridge["linkinfo"]["info_data"]["stp_state"] == 0
        assert links["eth2"]["master"] == "br-vm" and links["eth2"]["mtu"] == 9000
        assert links["eth3"]["mtu"] == 9000 and "UP" in links["eth3"]["flags"]
    doc = apply_site(capsys, inventory)
    assert {r["status"] for r in doc["results"]} == {"ok"}
    assert {doc["stats"][g.name].get("changed", 0) for g in clean} == {0}


def test_jumbo_frames_cross_the_segment_between_guests(clean, inventory, capsys):
    apply_site(capsys, inventory)
    for index, guest in enumerate(clean, start=1):
        guest.sh(f"ip addr add 192.168.50.{index}/24 dev br-vm && ip link set br-vm up")
    first = clean[0]
    for index in range(2, len(clean) + 1):
        # 9000 - 20 (IPv4) - 8 (ICMP) = the largest unfragmented payload
        first.sh(f"ping -c 2 -W 5 -M do -s 8972 192.168.50.{index}")
    too_big = first.run("ping -c 1 -W 5 -M do -s 8973 192.168.50.2")
    assert too_big.returncode != 0 and "message too long" in too_big.stderr + too_big.stdout


def test_lowering_the_mtu_reaches_the_kernel_and_the_device_limit_is_refused(
    clean, inventory, capsys
):
    apply_site(capsys, inventory)
    doc = apply_site(capsys, inventory, "-e", "vm_mtu=1500")
    for guest in clean:
        links = guest.links()
        assert [links[n]["mtu"] for n in ("br-vm", "eth2", "eth3")] == [1500] * 3, guest.name

    # virtio NICs on a libvirt network with MTU 9000 report max_mtu 9000: one more fails
    first = clean[0]
    assert first.link("eth3")["max_mtu"] == 9000
    code, doc = vnetctl(
        capsys, "run", SITE, "-i", inventory, *ON_GUESTS, "-e", "vm_mtu=9001",
        "--limit", first.name, "--tags", "mtu",
    )  # fmt: skip
    assert code == 2, doc
    failed = [r for r in doc["results"] if r["status"] == "failed"]
    assert len(failed) == 1 and "9001" in failed[0]["msg"] and "9000" in failed[0]["msg"]
    assert first.link("eth3")["mtu"] == 1500  # nothing changed


def test_drift_finds_changes_by_hand_and_a_run_repairs_them(clean, inventory, capsys, tmp_path):
    apply_site(capsys, inventory)
    h1, h2 = clean[0], clean[1]
    history = str(tmp_path / "history.sqlite")
    h1.sh("ip link set dev eth3 mtu 1500")
    h2.sh("ip link set dev eth2 nomaster")

    code, doc = vnetctl(capsys, "drift", SITE, "-i", inventory, *ON_GUESTS, "--history", history)
    assert code == 2, doc
    items = {
        (i["host"], i["resource"], i["kind"], i["field"], i["declared"], i["actual"])
        for h in doc["hosts"]
        for i in h["items"]
    }
    assert items == {
        (h1.name, "link eth3", "different", "mtu", 9000, 1500),
        (h2.name, "bridge br-vm", "missing", "ports", "eth2", None),
    }

    apply_site(capsys, inventory)
    code, doc = vnetctl(capsys, "drift", SITE, "-i", inventory, *ON_GUESTS, "--history", history)
    assert code == 0, doc
    assert {h["state"] for h in doc["hosts"]} == {"in_sync"}
