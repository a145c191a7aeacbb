"""Real VMs in the lab (`lab up --libvirt`): each lab host's own libvirtd boots tiny
guests (Debian's kernel, a busybox initramfs, qemu's software emulation) on a Linux
bridge, on an Open vSwitch bridge and on a libvirt network's port group; they answer
ping from their host, send the frames asked for at boot, and libvirt's hooks run with
the domain XML. Times are printed (run with -s to see them), not asserted tightly.

Guests are CPU-heavy under emulation: at most two run at once here."""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import (
    LabState,
    lab_down,
    lab_status,
    lab_up,
    load_state,
    reset_hosts,
    restart_libvirt,
)
from vnetctl.lab.proc import pid_cmdline
from vnetctl.lab.vm.domain_xml import Guest, Nic
from vnetctl.lab.vm.guest_init import SENT, Send
from vnetctl.lab.vm.guests import LabGuests
from vnetctl.lab.vm.libvirtd import libvirtd_alive

pytestmark = pytest.mark.lab
BOOT_TIMEOUT = 90.0  # a guest answers in 5-8 s on a quiet machine; 2 shared cores may be busy
BOOTS_MEASURED = 3
HOOK = """#!/bin/sh
# libvirt runs this with: guest name, operation, sub-operation, extra; domain XML on stdin
mkdir -p /run/vm-hook
cat >"/run/vm-hook/$1.$2.xml"
"""


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory) -> Iterator[LabState]:
    with own_lab("vm", tmp_path_factory.mktemp("vm"), hosts=1, ovs=True, libvirt=True) as state:
        yield state


@pytest.fixture
def vms(lab: LabState) -> LabGuests:
    return LabGuests(lab.name, lab.host_names[0])


@pytest.fixture
def linux_bridge(vms: LabGuests) -> Iterator[str]:
    """br-vm in the lab host, 10.61.0.1/24 on it."""
    vms.sh("ip link add br-vm type bridge && ip addr add 10.61.0.1/24 dev br-vm "
           "&& ip link set br-vm up")  # fmt: skip
    yield "br-vm"
    vms.sh("ip link del br-vm")


@pytest.fixture
def ovs_bridge(vms: LabGuests) -> Iterator[str]:
    """ovs-vm (userspace datapath) in the lab host, 10.62.0.1/24 on its internal port."""
    vms.sh("ovs-vsctl add-br ovs-vm -- set bridge ovs-vm datapath_type=netdev "
           "&& ip addr add 10.62.0.1/24 dev ovs-vm && ip link set ovs-vm up")  # fmt: skip
    yield "ovs-vm"
    vms.sh("ovs-vsctl del-br ovs-vm")


def bridge_ports(vms: LabGuests, bridge: str) -> set[str]:
    links = json.loads(vms.sh("ip -j link show master " + bridge).stdout or "[]")
    return {link["ifname"] for link in links}


def test_each_host_runs_its_own_libvirtd_which_its_ssh_sessions_reach(lab, vms, lab_ssh):
    host = load_state(lab.name).hosts[0]
    assert libvirtd_alive(host)
    assert [h.libvirt_alive for h in lab_status(lab.name).hosts] == [True]
    done = lab_ssh(lab, host.name, "virsh -q -c qemu:///system uri && hostname")
    assert done.stdout.split() == ["qemu:///system", host.name], done.stderr
    own_netns = os.readlink(f"/proc/{host.sshd_pid}/ns/net")
    assert os.readlink(f"/proc/{host.libvirtd_pid}/ns/net") == own_netns
    assert os.readlink(f"/proc/{host.libvirtd_pid}/ns/net") != os.readlink("/proc/self/ns/net")

    started = time.monotonic()
    restart_libvirt(lab.name)
    took = time.monotonic() - started
    again = load_state(lab.name).hosts[0]
    assert again.libvirtd_pid != host.libvirtd_pid and pid_cmdline(host.libvirtd_pid) is None
    rss = int(vms.sh(f"ps -o rss= -p {again.libvirtd_pid}").stdout)
    print(f"\nlibvirtd: (re)started and answering virsh in {took:.2f} s, {rss / 1024:.0f} MB RSS")


def test_status_reports_a_dead_libvirtd_and_up_starts_it_again(lab, capsys):
    before = load_state(lab.name).hosts[0]
    os.kill(before.libvirtd_pid, signal.SIGKILL)
    wait_until(lambda: pid_cmdline(before.libvirtd_pid) is None, 10, "libvirtd gone")
    status = lab_status(lab.name)
    assert not status.healthy and [h.libvirt_alive for h in status.hosts] == [False]
    assert main(["lab", "status", "--name", lab.name]) == 1
    assert "DEAD" in capsys.readouterr().out
    mended = lab_up(lab.name, hosts=1).hosts[0]
    assert mended.libvirtd_pid != before.libvirtd_pid and lab_status(lab.name).healthy


def test_a_guest_boots_on_a_linux_bridge_and_answers_ping(vms, linux_bridge):
    """Several boots, one at a time: the median time from `virsh start` to the first
    answer to ping from the host, and the guest's memory."""
    boots, ready, rss = [], [], []
    for i in range(BOOTS_MEASURED):
        guest = Guest(f"lb{i}", Nic(bridge=linux_bridge), addresses=(f"10.61.0.{10 + i}/24",))
        with vms.running(guest) as started:
            tap = vms.taps(guest.name)[0]
            assert tap in bridge_ports(vms, linux_bridge)
            boots.append(vms.wait_ping(f"10.61.0.{10 + i}", BOOT_TIMEOUT) - started)
            ready.append(vms.wait_console(guest.name, timeout=BOOT_TIMEOUT) - started)
            rss.append(vms.rss_kib(guest.name) / 1024)
        assert tap not in bridge_ports(vms, linux_bridge)
    print(
        f"\nguest on a Linux bridge, start to first ping: median {statistics.median(boots):.1f} s "
        f"of {len(boots)} ({', '.join(f'{b:.1f}' for b in boots)}); ready line "
        f"{statistics.median(ready):.1f} s; RSS {statistics.median(rss):.0f} MB; kernel "
        f"{vms.image.kernel_package}, initramfs {vms.image.initrd.stat().st_size // 1024} KiB"
    )


TIMED_START = """\
end=$(($(date +%s%N) + 30000000000))
t0=$(date +%s%N)
virsh -q -c qemu:///system start "$1" >/dev/null &
until [ -e "/sys/class/net/$2/brif/$3" ]; do [ "$(date +%s%N)" -lt "$end" ] || exit 1; done
t1=$(date +%s%N)
wait $! || exit 2
t2=$(date +%s%N)
echo $(((t1 - t0) / 1000)) $(((t2 - t0) / 1000))
"""


def test_a_guests_tap_is_in_its_bridge_while_virsh_start_runs(vms, linux_bridge):
    """From `virsh start` to the guest's tap in the Linux bridge, timed in the host (the
    tap polled, its name fixed by the guest's definition); the guest is not booted."""
    to_port, to_return = [], []
    for i in range(BOOTS_MEASURED):
        guest = Guest(f"tap{i}", Nic(bridge=linux_bridge, tap=f"vmtap{i}"))
        vms.define(guest)
        try:
            times = vms.sh(TIMED_START, args=(guest.name, linux_bridge, f"vmtap{i}")).stdout.split()
            to_port.append(int(times[0]) / 1000)
            to_return.append(int(times[1]) / 1000)
        finally:
            vms.remove(guest.name)
        assert f"vmtap{i}" not in bridge_ports(vms, linux_bridge)
    print(
        f"\n`virsh start` to the tap in the bridge: median {statistics.median(to_port):.0f} ms "
        f"({', '.join(f'{t:.0f}' for t in to_port)}); `virsh start` returned after "
        f"{statistics.median(to_return):.0f} ms"
    )


def test_guests_on_an_ovs_network_take_their_port_group_vlan(vms, ovs_bridge):
    vms.define_network("vm-ovs", ovs_bridge, ovs=True, portgroups={"plain": None, "db": 20})
    web = Guest("ovs-web", Nic(network="vm-ovs"), addresses=("10.62.0.10/24",))
    db = Guest("ovs-db", Nic(network="vm-ovs", portgroup="db"), addresses=("10.62.20.10/24",))
    try:
        with vms.running(web) as started, vms.running(db):
            answered = vms.wait_ping("10.62.0.10", BOOT_TIMEOUT)
            ports = json.loads(vms.sh("ovs-vsctl -f json --columns=name,tag list port").stdout)
            tags = {row[0]: row[1] for row in ports["data"]}
            assert tags[vms.taps("ovs-db")[0]] == 20
            assert tags[vms.taps("ovs-web")[0]] == ["set", []]  # no tag: the default group
            print(f"\nguest on an OVS network, start to first ping: {answered - started:.1f} s")
    finally:
        vms.remove_network("vm-ovs")


def test_a_guest_sends_frames_with_a_forged_mac_at_boot(vms, linux_bridge):
    """The bridge learns the forged source MAC on the guest's port: the frames left the
    guest; then the guest takes its own MAC back and says it is ready."""
    forged = "02:00:00:00:00:99"
    sends = (Send("arp", "10.61.0.1", src=forged, count=2),)
    guest = Guest("forger", Nic(bridge=linux_bridge), addresses=("10.61.0.30/24",), sends=sends)
    with vms.running(guest):
        vms.wait_console(guest.name, timeout=BOOT_TIMEOUT)
        tap = vms.taps(guest.name)[0]
        fdb = json.loads(vms.sh(f"bridge -j fdb show br {linux_bridge}").stdout)
        assert any(e.get("mac") == forged and e.get("ifname") == tap for e in fdb), fdb
        console = vms.console(guest.name)
        assert f"{SENT} arp eth0 {forged} 10.61.0.1 2" in console
        assert f"ready {guest.mac}" in console


def test_a_hook_installed_before_libvirtd_starts_runs_on_started_with_the_domain_xml(
    vms, ovs_bridge
):
    vms.install_hook(HOOK)  # libvirtd restarted: it finds hooks when it starts
    vms.define_network("vm-hook", ovs_bridge, ovs=True, portgroups={"web": None, "db": 30})
    guest = Guest("hooked", Nic(network="vm-hook", portgroup="db"))
    try:
        with vms.running(guest):
            wait_until(lambda: vms.sh("test -s /run/vm-hook/hooked.started.xml", check=False)
                       .returncode == 0, 30, "the hook's file for `started`")  # fmt: skip
            xml = ET.fromstring(vms.sh("cat /run/vm-hook/hooked.started.xml").stdout)
            assert xml.findtext("name") == "hooked"
            source = xml.find("devices/interface/source")
            assert (source.get("network"), source.get("portgroup")) == ("vm-hook", "db")
            assert xml.find("devices/interface/target").get("dev") == vms.taps("hooked")[0]
            ran = vms.sh("ls /run/vm-hook").stdout.split()
            assert {"hooked.prepare.xml", "hooked.start.xml"} <= set(ran)
    finally:
        vms.remove_network("vm-hook")
        vms.sh("rm -rf /run/vm-hook")


def test_reset_removes_guests_networks_and_hooks(lab, vms, linux_bridge):
    vms.install_hook(HOOK)
    vms.define_network("vm-reset", linux_bridge)
    vms.define(Guest("defined", Nic(bridge=linux_bridge)))
    reset_hosts(lab.name)
    assert vms.names() == [] and vms.virsh("net-list", "--all", "--name").split() == []
    assert vms.sh("test -e /etc/libvirt/hooks", check=False).returncode == 1
    assert libvirtd_alive(load_state(lab.name).hosts[0])
    vms.sh("ip link add br-vm type bridge")  # reset deleted it; the fixture deletes it


def test_down_ends_libvirtd_and_its_running_guests_and_no_other_labs(
    tmp_path, lab, vms, linux_bridge
):
    """`lab up --no-libvirt` and `lab down` end that lab's guests and libvirtd, and
    nothing of another lab's (two guests at once: one here, one in the lab that goes)."""
    with vms.running(Guest("stays", Nic(bridge=linux_bridge))):
        other_qemu = int(vms.sh("cat /run/libvirt/qemu/stays.pid").stdout)
        with own_lab("vmd", tmp_path, hosts=1, libvirt=True) as state:
            down = LabGuests(state.name, state.host_names[0])
            down.sh("ip link add br-vm type bridge && ip link set br-vm up")
            left = Guest("left", Nic(bridge="br-vm"))
            down.boot(left)
            qemu = int(down.sh("cat /run/libvirt/qemu/left.pid").stdout)
            libvirtd = load_state(state.name).hosts[0].libvirtd_pid
            lab_up(state.name, hosts=1, libvirt=False)  # `lab up --no-libvirt`
            assert pid_cmdline(qemu) is None and pid_cmdline(libvirtd) is None
            assert [h.libvirt_alive for h in lab_status(state.name).hosts] == [None]
            assert load_state(state.name).hosts[0].libvirtd_pid is None

            lab_up(state.name, hosts=1, libvirt=True)
            down.boot(left)  # running when the lab goes down
            qemu = int(down.sh("cat /run/libvirt/qemu/left.pid").stdout)
            libvirtd = load_state(state.name).hosts[0].libvirtd_pid
            assert pid_cmdline(qemu) and pid_cmdline(libvirtd)
            lab_down(state.name)
            assert pid_cmdline(qemu) is None and pid_cmdline(libvirtd) is None
        assert pid_cmdline(other_qemu) and vms.names(running=True) == ["stays"]
        assert libvirtd_alive(load_state(lab.name).hosts[0])
