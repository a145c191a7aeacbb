"""802.1Q on full-kernel guests (issue 15's live tests): sub-interfaces passing tagged
traffic between guests and keeping VLANs apart, and bridge VLAN filtering isolating two
VLANs on one bridge."""

from __future__ import annotations

import pytest

from tests.vagrant.guests import ROOT, vnetctl

pytestmark = pytest.mark.vagrant

PLAYBOOKS = ROOT / "tests" / "vagrant" / "playbooks"


def reaches(guest, address: str) -> bool:
    return guest.run(f"ping -c 2 -W 3 {address}").returncode == 0


def test_vlan_subinterfaces_pass_tagged_traffic_and_keep_vlans_apart(clean, inventory, capsys):
    code, doc = vnetctl(capsys, "run", str(PLAYBOOKS / "vlans.yml"), "-i", inventory)
    assert code == 0, doc
    for guest in clean:
        for vid in (100, 200):
            info = guest.link(f"eth2.{vid}")["linkinfo"]
            assert info["info_kind"] == "vlan", guest.name
            assert info["info_data"]["protocol"] == "802.1Q" and info["info_data"]["id"] == vid
    code, doc = vnetctl(capsys, "run", str(PLAYBOOKS / "vlans.yml"), "-i", inventory)
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}

    h1, h2 = clean[0], clean[1]
    h1.sh("ip addr add 192.168.110.1/24 dev eth2.100 && ip link set eth2.100 up")
    h2.sh("ip addr add 192.168.110.2/24 dev eth2.100 && ip link set eth2.100 up")
    assert reaches(h1, "192.168.110.2")
    # the same subnet on VLAN 200 of h2: a tag apart, so unreachable from VLAN 100. By
    # default Linux answers ARP for any of its addresses on any interface (h2's eth2.100
    # would answer for eth2.200's address): arp_ignore=1 answers only on the interface
    # that holds it, which is what a VLAN boundary needs to be seen
    h1.sh("ip addr add 192.168.120.1/24 dev eth2.100")
    h2.sh("ip addr add 192.168.120.2/24 dev eth2.200 && ip link set eth2.200 up")
    before = h2.sh("sysctl -n net.ipv4.conf.all.arp_ignore").strip()
    h2.sh("sysctl -qw net.ipv4.conf.all.arp_ignore=1 && ip neigh flush dev eth2.100")
    h1.sh("ip neigh flush dev eth2.100")
    try:
        assert not reaches(h1, "192.168.120.2")
    finally:
        h2.sh(f"sysctl -qw net.ipv4.conf.all.arp_ignore={before}")


def test_a_vlan_above_its_parents_mtu_is_refused_and_nothing_is_made(clean, inventory, capsys):
    first = clean[0]
    assert first.link("eth2")["mtu"] == 1500
    code, doc = vnetctl(
        capsys, "run", str(PLAYBOOKS / "vlans.yml"), "-i", inventory,
        "--limit", first.name, "-e", "vlan_mtu=1600",
    )  # fmt: skip
    assert code != 0, doc
    assert "eth2.100" not in first.links()


NAMESPACES = r"""
for vid in 10 20; do
    ip netns add ns$vid
    ip link add vm$vid type veth peer name vm${vid}p
    ip link set vm${vid}p netns ns$vid
    ip -n ns$vid addr add 192.168.140.$((vid + {index}))/24 dev vm${vid}p
    ip -n ns$vid link set vm${vid}p up
    ip link set vm$vid up
done
"""


def in_ns(guest, ns: str, address: str) -> bool:
    return guest.run(f"ip netns exec {ns} ping -c 2 -W 3 {address}").returncode == 0


def test_vlan_filtering_isolates_two_vlans_on_one_bridge(clean, inventory, capsys):
    """Per guest N: a VM in VLAN 10 at 192.168.140.(10+N), one in VLAN 20 at .(20+N), on
    br-vf with eth2 carrying both tagged. Same VLAN across guests: reachable; the other
    VLAN, on the same bridge or across: not."""
    h1, h2 = clean[0], clean[1]
    for index, guest in enumerate((h1, h2), start=1):
        guest.sh("ip netns del ns10 2>/dev/null; ip netns del ns20 2>/dev/null; true")
        guest.sh(NAMESPACES.replace("{index}", str(index)))
    try:
        code, doc = vnetctl(
            capsys, "run", str(PLAYBOOKS / "vlan-filtering.yml"), "-i", inventory,
            "--limit", f"{h1.name},{h2.name}",
        )  # fmt: skip
        assert code == 0, doc
        assert h1.link("br-vf")["linkinfo"]["info_data"]["vlan_filtering"] == 1
        assert in_ns(h1, "ns10", "192.168.140.12")  # VLAN 10 to VLAN 10 across guests
        assert in_ns(h1, "ns20", "192.168.140.22")  # VLAN 20 likewise
        assert not in_ns(h1, "ns10", "192.168.140.21")  # VLAN 10 to 20, same bridge
        assert not in_ns(h1, "ns10", "192.168.140.22")  # VLAN 10 to 20, across
    finally:
        for guest in (h1, h2):
            guest.sh("ip netns del ns10 2>/dev/null; ip netns del ns20 2>/dev/null; true")
