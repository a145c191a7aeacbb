"""Bonds, VLAN devices and bridge VLAN filtering with traffic, on hosts whose kernel has
bonding, 8021q and bridge VLAN filtering: the full-kernel tier (vagrant/).

Skipped unless VNETCTL_FULL_KERNEL_INVENTORY names an inventory of at least two such
hosts, reachable by root over SSH (a key, no password), each with eth1 and eth2 on two
segments shared by all of them (eth1 of every host on one, eth2 on the other; the
addresses below are on those segments only). The 802.3ad test also needs segments
that forward LACPDUs (point-to-point links, or bridges with group_fwd_mask for them):
set VNETCTL_FULL_KERNEL_LACP=1 when they do. These tests change eth1 and eth2 of the
first two hosts and remove what they made at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import yaml

from vnetctl.cli.main import main
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory

INVENTORY = os.environ.get("VNETCTL_FULL_KERNEL_INVENTORY")
pytestmark = pytest.mark.skipif(
    not INVENTORY,
    reason="needs hosts with bonding, 8021q and bridge VLAN filtering, which this machine's "
    "kernel lacks: set VNETCTL_FULL_KERNEL_INVENTORY to the full-kernel tier's inventory",
)
NET = "10.231.{}.{}"  # test addresses, on the tier's private segments only


@pytest.fixture(scope="module")
def hosts():
    inventory = load_inventory(INVENTORY)
    names = sorted(inventory.hosts)[:2]
    if len(names) < 2:
        pytest.fail(f"{INVENTORY}: the full-kernel tests need two hosts")
    return {n: ConnectionSpec.from_host(inventory.hosts[n]) for n in names}


def ssh(spec, command, check=True):
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", str(spec.port or 22)]
    argv += ["-i", spec.key_file] if spec.key_file else []
    argv += [f"{spec.user or 'root'}@{spec.address}", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=check)


def apply(tmp_path, tasks_by_host):
    plays = [{"name": f"teaming on {h}", "hosts": h, "tasks": t} for h, t in tasks_by_host.items()]
    path = tmp_path / "teaming.yml"
    path.write_text(yaml.safe_dump(plays))
    assert main(["run", str(path), "-i", INVENTORY]) == 0
    assert main(["run", str(path), "-i", INVENTORY, "--check"]) == 0  # converged


def received(ping_output):
    line = next((x for x in ping_output.splitlines() if "received" in x), "0 received")
    return int(line.split(" received")[0].split()[-1])


def pings(spec, target, count=20, interval=0.2):
    """Replies out of `count` echo requests."""
    return received(ssh(spec, f"ping -c {count} -i {interval} -W 1 {target}", check=False).stdout)


@pytest.fixture
def clean(hosts):
    yield
    for spec in hosts.values():
        ssh(spec, "ip link del br-vt; ip link del bond0; ip link del eth1.310; "
                  "ip link set eth1 nomaster; ip link set eth2 nomaster; "
                  "ip link set eth1 up; ip link set eth2 up", check=False)  # fmt: skip


def bond_task(mode, **options):
    bond = {"name": "bond0", "mode": mode, "members": ["eth1", "eth2"], "miimon": 100, **options}
    return [{"name": "bond", "bond": bond}]


def address(spec, device, ip):
    ssh(spec, f"ip addr replace {ip}/24 dev {device}")


def test_active_backup_fails_over_when_the_active_member_goes_down(hosts, tmp_path, clean):
    (a, spec_a), (b, spec_b) = hosts.items()
    apply(tmp_path, {h: bond_task("active-backup", primary="eth1") for h in hosts})
    address(spec_a, "bond0", NET.format(1, 1))
    address(spec_b, "bond0", NET.format(1, 2))
    assert pings(spec_a, NET.format(1, 2), count=5) == 5
    # one session: the active member goes down 1 s into a 5 s ping stream
    stream = ssh(spec_a, f"(sleep 1; ip link set dev eth1 down) & ping -c 25 -i 0.2 -W 1 "
                         f"{NET.format(1, 2)}", check=False).stdout  # fmt: skip
    assert received(stream) >= 20  # a short gap at most, while miimon notices
    info = json.loads(ssh(spec_a, "ip -j -d link show dev bond0").stdout)[0]
    assert info["linkinfo"]["info_data"]["active_slave"] == "eth2"


@pytest.mark.skipif(
    os.environ.get("VNETCTL_FULL_KERNEL_LACP") != "1",
    reason="802.3ad needs segments that forward LACPDUs: set VNETCTL_FULL_KERNEL_LACP=1",
)
def test_802_3ad_between_two_hosts_aggregates_and_passes_traffic(hosts, tmp_path, clean):
    (a, spec_a), (b, spec_b) = hosts.items()
    bonds = bond_task("802.3ad", lacp_rate="fast", xmit_hash_policy="layer3+4")
    apply(tmp_path, dict.fromkeys(hosts, bonds))
    address(spec_a, "bond0", NET.format(2, 1))
    address(spec_b, "bond0", NET.format(2, 2))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # LACP converges within a few fast periods
        info = json.loads(ssh(spec_a, "ip -j -d link show dev bond0").stdout)[0]
        if info["linkinfo"]["info_data"].get("ad_info", {}).get("num_ports") == 2:
            break
        time.sleep(1)
    assert info["linkinfo"]["info_data"]["ad_info"]["num_ports"] == 2
    assert pings(spec_a, NET.format(2, 2), count=10) == 10


def test_vlan_sub_interfaces_pass_tagged_traffic(hosts, tmp_path, clean):
    (a, spec_a), (b, spec_b) = hosts.items()
    apply(tmp_path, {h: [{"name": "vlan 310", "vlan": {"name": "eth1.310"}}] for h in hosts})
    address(spec_a, "eth1.310", NET.format(3, 1))
    address(spec_b, "eth1.310", NET.format(3, 2))
    assert pings(spec_a, NET.format(3, 2), count=5) == 5
    link = json.loads(ssh(spec_a, "ip -j -d link show dev eth1.310").stdout)[0]
    assert link["linkinfo"]["info_data"]["id"] == 310 and link["link"] == "eth1"


def test_vlan_filtering_keeps_two_vlans_apart_on_one_bridge(hosts, tmp_path, clean):
    """On host A, br-vt filters VLANs: a veth 'guest' in VLAN 320 and one in VLAN 330,
    the uplink eth1 trunks both. Host B has eth1.320 only: it reaches the VLAN 320 guest
    and never the VLAN 330 one."""
    (a, spec_a), (b, spec_b) = hosts.items()
    ssh(spec_a, "for g in 320 330; do ip link add vt$g type veth peer name vt${g}p; "
                "ip link set vt$g up; done")  # fmt: skip
    bridge = {"name": "br-vt", "ports": ["eth1", "vt320p", "vt330p"], "vlan_filtering": True,
              "default_pvid": 0, "port_vlans": [
                  {"port": "eth1", "vlans": "320,330"},
                  {"port": "vt320p", "pvid": 320, "untagged": 320},
                  {"port": "vt330p", "pvid": 330, "untagged": 330}]}  # fmt: skip
    apply(tmp_path, {a: [{"name": "filtering bridge", "linux_bridge": bridge}],
                     b: [{"name": "vlan 320", "vlan": {"name": "eth1.320"}}]})  # fmt: skip
    address(spec_a, "vt320", NET.format(4, 1))
    address(spec_a, "vt330", NET.format(4, 3))
    address(spec_b, "eth1.320", NET.format(4, 2))
    try:
        assert pings(spec_b, NET.format(4, 1), count=5) == 5
        assert pings(spec_b, NET.format(4, 3), count=5) == 0  # VLAN 330 is another segment
    finally:
        ssh(spec_a, "ip link del vt320; ip link del vt330", check=False)
        ssh(spec_b, "ip link del eth1.320", check=False)
