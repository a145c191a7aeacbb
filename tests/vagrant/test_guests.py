"""The tier itself: every guest is what vagrant/Vagrantfile promises, a full kernel with
systemd, its NICs in the documented order on the documented segments."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.vagrant

# What the namespace lab's kernel lacks and these tests need (README, "The Vagrant tier"),
# each shown by using it once on a throwaway device.
KERNEL_FEATURES = {
    "bonding": "ip link add kf-bond type bond mode 802.3ad && ip link del kf-bond",
    "802.1Q": "ip link add link kf-dummy name kf-dummy.4000 type vlan id 4000",
    "bridge VLAN filtering": "ip link add kf-br type bridge vlan_filtering 1 && "
    "bridge vlan add dev kf-br vid 10 self && ip link del kf-br",
    "fq_codel": "tc qdisc add dev kf-dummy root handle 1: htb default 10 && "
    "tc class add dev kf-dummy parent 1: classid 1:10 htb rate 10mbit && "
    "tc qdisc add dev kf-dummy parent 1:10 fq_codel",
    "ifb": "ip link add kf-ifb type ifb && ip link del kf-ifb",
    "openvswitch datapath": "modprobe openvswitch && test -d /sys/module/openvswitch",
}
PACKAGES = ("python3", "iproute2", "openvswitch-switch", "nftables", "iperf3", "systemd")


def test_guests_run_systemd_and_carry_the_tier_packages(guests):
    for guest in guests:
        assert guest.sh("cat /proc/1/comm").strip() == "systemd", guest.name
        assert guest.sh("systemctl is-active systemd-networkd ovs-vswitchd").split() == [
            "active",
            "active",
        ], guest.name
        status = guest.sh(
            "dpkg-query -W -f='${Package} ${db:Status-Status}\\n' " + " ".join(PACKAGES)
        )
        assert sorted(status.split("\n")[:-1]) == sorted(f"{p} installed" for p in PACKAGES)


def test_the_full_kernel_has_what_the_lab_lacks(guests):
    for guest in guests:
        guest.sh("ip link add kf-dummy type dummy && ip link set kf-dummy up")
        try:
            for feature, script in KERNEL_FEATURES.items():
                done = guest.run(script)
                assert done.returncode == 0, (guest.name, feature, done.stderr)
        finally:
            guest.sh("ip link del kf-dummy")


def test_nics_are_in_the_documented_order_on_the_documented_segments(guests):
    expected = ["vnetctl-mgmt", "vnetctl-underlay", "vnetctl-team", "vnetctl-team"]
    for index, guest in enumerate(guests, start=1):
        sources = [guest.nics[f"eth{n}"]["source"] for n in range(len(guest.nics))]
        paired = index % 2 == 0 or index < len(guests)  # h(2k-1) and h(2k) are wired
        assert sources == expected + (["udp", "udp"] if paired else []), guest.name
        for nic in guest.nics:
            assert guest.ifname_of(nic) == nic, (guest.name, nic)
        addresses = json.loads(guest.sh("ip -j -4 addr show dev eth1"))[0]["addr_info"]
        assert [a["local"] for a in addresses] == [guest.underlay], guest.name
