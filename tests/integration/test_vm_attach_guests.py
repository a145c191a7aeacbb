"""Attach-time policy with real guests started by libvirt (issue 25): a VM started
between runs gets its port group before its first frame, from vnetctl's libvirt hook.
Each test shows the hole first (the hook removed, libvirtd restarted: what every VM
started between runs had), then the hook closing it:
  - Linux bridge: frames a guest sends at boot from a forged MAC are dropped (the
    bridge never learns that MAC) and its own pass;
  - Open vSwitch, a libvirt network's port group: VLAN-20-tagged frames a new web VM
    sends at boot no longer reach the VLAN-20 database port (its port is an access
    port of VLAN 10 before the guest runs);
  - promiscuous: the load balancer's own vNIC gets copies of the segment's traffic
    while its group says accept, and none with reject (both dataplanes).
The time from `virsh start` to the hook's policy in place is printed (pytest -s). One
guest at a time: they run under qemu's software emulation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.integration.portsec_matrix import add_guests
from tests.labhosts import lab_skip_reason, own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, restart_libvirt
from vnetctl.lab.lab import in_host_argv
from vnetctl.lab.vm.domain_xml import Guest, Nic
from vnetctl.lab.vm.guest_init import Send
from vnetctl.lab.vm.guests import LabGuests

pytestmark = pytest.mark.lab
BOOT = 90.0  # seconds for a guest's ready line (5-8 on a quiet machine)
FRAMES = (Path(__file__).parent / "frames.py").read_text()
HOOK = "/etc/libvirt/hooks/qemu.d/vnetctl-%s"
FORGED = "02:00:00:00:00:99"
PEERS = {"pa1": "52:54:00:7a:00:01", "pa2": "52:54:00:7a:00:02", "db1": "52:54:00:7a:00:20"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    with own_lab("vg", tmp_path_factory.mktemp("vg"), hosts=1, ovs=True, libvirt=True) as state:
        add_guests(state, state.host_names[0], PEERS)
        yield state


@pytest.fixture
def vms(lab):
    guests = LabGuests(lab.name, lab.host_names[0])
    yield guests
    guests.sh("ip link del br-vg; ovs-vsctl --if-exists del-br br-vg; nft delete table "
              "bridge vnetctl; nft delete table netdev vnetctl; rm -rf /etc/vnetctl/attach "
              "/etc/libvirt/hooks /run/vnetctl", check=False)  # fmt: skip
    for network in guests.virsh("net-list", "--all", "--name").split():
        guests.remove_network(network)


def run(capsys, lab, tmp_path, tasks, *extra):
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump([{"name": "vms", "hosts": lab.host_names[0], "tasks": tasks}]))
    code = main(["run", str(path), "-i", str(lab.inventory_path), "--format", "json", *extra])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    return doc


def without_hook(lab, vms, module):
    """What a VM started between runs had before: no hook (libvirtd restarted)."""
    vms.sh(f"rm -f {HOOK % module}")
    restart_libvirt(lab.name)


def with_hook(capsys, lab, tmp_path, tasks):
    """A run writes the hook again (it is drift); libvirtd finds it when it starts."""
    doc = run(capsys, lab, tmp_path, tasks)
    changed = [c["field"] for r in doc["results"] for c in r.get("changes", [])]
    assert "attach.hook" in changed, changed
    restart_libvirt(lab.name)


def boot(vms, guest):
    """Start the guest; (wall-clock start, ready time) once it said it is ready."""
    vms.define(guest)
    wall, started = time.time(), vms.start(guest.name)
    ready = vms.wait_console(guest.name, timeout=BOOT)
    return wall, ready - started


def record(vms, tap):
    return json.loads(vms.sh(f"cat /run/vnetctl/vm-ports/{tap}.json").stdout)


def note(text):
    print(f"\n{text}", file=sys.stderr)


def linux_tasks(group):
    bridge = {"name": "br-vg", "ports": ["pa1p", "pa2p"], "stp": False, "forward_delay": 0,
              "addresses": ["10.71.0.1/24"]}  # fmt: skip
    return [{"name": "bridge", "linux_bridge": bridge},
            {"name": "group", "port_group": dict({"bridge": "br-vg"}, **group)}]  # fmt: skip


def test_a_guest_started_between_runs_sends_no_forged_frame_on_a_linux_bridge(
    lab, vms, capsys, tmp_path
):
    tasks = linux_tasks({"name": "web", "ports": ["vnet*"]})  # every setting: reject
    run(capsys, lab, tmp_path, tasks)
    forged = Send("arp", "10.71.0.1", src=FORGED, count=3)
    guest = Guest("forger", Nic(bridge="br-vg"), addresses=("10.71.0.10/24",),
                  sends=(forged, Send("arp", "10.71.0.1", count=2)))  # fmt: skip

    def learned():
        fdb = json.loads(vms.sh("bridge -j fdb show br br-vg").stdout)
        return {e["mac"] for e in fdb if e.get("ifname", "").startswith("vnet")}

    without_hook(lab, vms, "port_group")
    try:
        boot(vms, guest)
        assert FORGED in learned()  # the hole: nothing guarded the new VM's port
    finally:
        vms.remove(guest.name)
    with_hook(capsys, lab, tmp_path, tasks)
    try:
        wall, ready = boot(vms, guest)
        tap = vms.taps(guest.name)[0]
        assert FORGED not in learned() and guest.mac in learned()
        vms.wait_ping("10.71.0.10", BOOT)
        mine = record(vms, tap)
        assert (mine["mac"], mine["groups"]) == (guest.mac, ["web"])
        note(
            f"Linux bridge: policy in place {mine['at'] - wall:.2f} s after `virsh start` "
            f"(the hook's work for the NIC: {mine['took']:.3f} s); guest ready {ready:.1f} s"
        )
        # libvirtd started again hands running guests to the hook (`reconnect`)
        guarded = f"nft list set bridge vnetctl guarded | grep -qw {tap}"
        vms.sh(f"nft delete element bridge vnetctl guarded {{ {tap} }}")
        assert vms.sh(guarded, check=False).returncode == 1
        restart_libvirt(lab.name)  # libvirtd reconnects to its guests in threads of its own
        # the hook records the NIC first (what claims() reads), the groups and "at" once
        # its policy is in place: the guarded set can hold the tap before that
        wait_until(lambda: vms.sh(guarded, check=False).returncode == 0
                   and record(vms, tap).get("at", 0) > mine["at"], 30, "the reconnect")  # fmt: skip
    finally:
        vms.remove(guest.name)


# Counts the frames from a MAC that `dev` receives, until its stdin closes.
SNIFF = """
import select, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
src, n = bytes.fromhex(sys.argv[2].replace(":", "")), 0
print("ready", flush=True)
while sys.stdin not in select.select([s, sys.stdin], [], [])[0] or sys.stdin.read(1):
    data, addr = s.recvfrom(4096)
    n += addr[2] != socket.PACKET_OUTGOING and data[6:12] == src
print(n, flush=True)
"""


@contextmanager
def counting(lab, dev, mac):
    """Count, while the block runs, the frames from `mac` that `dev` receives:
    yields a list that holds the count afterwards."""
    argv = in_host_argv(lab, lab.host(lab.host_names[0]), ["python3", "-c", SNIFF, dev, mac])
    found: list[int] = []
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as sniff:
        try:
            assert sniff.stdout.readline() == "ready\n"
            yield found
        finally:
            sniff.stdin.close()
            found.append(int(sniff.stdout.read().strip() or -1))


def test_a_new_vm_on_an_ovs_port_group_sends_no_frame_into_another_vlan(lab, vms, capsys, tmp_path):
    """The held-out case: port groups without port security, a web VM started between
    runs sends VLAN-20-tagged frames at boot; without the hook they reach the database
    port (VLAN 20), with it its port is VLAN 10's before it runs."""
    bridge = {
        "name": "br-vg",
        "datapath_type": "netdev",
        "ports": [{"name": "db1p", "tag": 20}, {"name": "vnet*", "type": "vm"}],
    }
    groups = [
        ("web", ["vnet*"], 10, []),
        ("db", ["db1p"], 20, [{"port": "db1p", "mac": PEERS["db1"]}]),
    ]
    tasks = [{"name": "bridge", "ovs_bridge": bridge}] + [
        {"name": name, "ovs_port_group": {"name": name, "bridge": "br-vg", "ports": ports,
                                          "vlan": vlan, "port_security": False,
                                          "addresses": given or None}}
        for name, ports, vlan, given in groups
    ]  # fmt: skip
    run(capsys, lab, tmp_path, tasks)
    vms.define_network("prod", "br-vg", ovs=True, portgroups={"web": None, "db": None})
    tagged = Send("arp", "10.72.20.5", dev="eth0.20", count=5)
    guest = Guest("newweb", Nic(network="prod", portgroup="web"),
                  vlans=((20, "10.72.20.9/24"),), sends=(tagged,))  # fmt: skip

    without_hook(lab, vms, "ovs_port_group")
    try:
        with counting(lab, "db1", guest.mac) as reached:
            boot(vms, guest)
        assert reached == [5]  # the hole: 5 of 5 reached VLAN 20
    finally:
        vms.remove(guest.name)
    with_hook(capsys, lab, tmp_path, tasks)
    try:
        with counting(lab, "db1", guest.mac) as reached:
            wall, ready = boot(vms, guest)
        tap = vms.taps(guest.name)[0]
        assert "vnet-guest: sent arp eth0.20" in vms.console(guest.name)
        assert reached == [0]
        assert vms.sh(f"ovs-vsctl get port {tap} tag").stdout.strip() == "10"
        mine = record(vms, tap)
        assert mine["groups"] == ["web"]
        note(
            f"OVS, libvirt port group: policy in place {mine['at'] - wall:.2f} s after "
            f"`virsh start` (the hook's work: {mine['took']:.3f} s); guest ready {ready:.1f} s"
        )
    finally:
        vms.remove(guest.name)


def lb_tasks(plane, promiscuous):
    """pa1, pa2 (no security) and the load balancer's group on br-vg."""
    if plane == "linux":
        bridge = {"linux_bridge": {"name": "br-vg", "ports": ["pa1p", "pa2p"], "stp": False,
                                   "forward_delay": 0}}  # fmt: skip
        module = "port_group"
    else:
        bridge = {
            "ovs_bridge": {
                "name": "br-vg",
                "datapath_type": "netdev",
                "ports": [{"name": "pa1p"}, {"name": "pa2p"}, {"name": "vnet*", "type": "vm"}],
            }
        }
        module = "ovs_port_group"
    lb = {"name": "lb", "bridge": "br-vg", "ports": ["vnet*"], "promiscuous": promiscuous}
    return [dict(bridge, name="bridge"), {"name": "lb", module: lb}]


@pytest.mark.parametrize("plane", ["linux", "ovs"])
def test_a_promiscuous_load_balancer_gets_the_segments_traffic_on_its_own_vnic(
    lab, vms, capsys, tmp_path, plane
):
    """Started after the run, the LB guest's tap gets copies of pa1's unicast to pa2
    (the hook made them); a run with promiscuous reject takes them away."""
    run(capsys, lab, tmp_path, lb_tasks(plane, "accept"))
    restart_libvirt(lab.name)
    nic = Nic(bridge="br-vg", ovs=plane == "ovs")
    guest = Guest("lb1", nic, addresses=("10.73.0.10/24",))
    hello = {"dev": "pa2", "tag": "hello", "src": PEERS["pa2"], "kind": "raw"}
    uni = {"dev": "pa1", "tag": "pa1-to-pa2", "src": PEERS["pa1"], "dst": PEERS["pa2"],
           "kind": "raw"}  # fmt: skip
    try:
        boot(vms, guest)
        tap = vms.taps(guest.name)[0]

        def sent_to_guest():
            spec = {"send": [hello, uni], "listen": [">" + tap], "count": 2}
            argv = ["python3", "-c", FRAMES, json.dumps(spec)]
            done = host_exec(lab.name, lab.host_names[0], argv)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)[">" + tap]

        assert sent_to_guest() == ["hello", "pa1-to-pa2"]
        assert record(vms, tap)["groups"] == ["lb"]
        run(capsys, lab, tmp_path, lb_tasks(plane, "reject")[1:])  # (a linux_bridge task
        assert sent_to_guest() == ["hello"]  # would detach the tap: vm-ports' work)
    finally:
        vms.remove(guest.name)


def test_libvirt_refuses_to_start_a_vm_whose_policy_the_hook_cannot_apply(
    lab, vms, capsys, tmp_path
):
    """Fail closed: the hook exits 1 on `start`, and libvirt does not start the VM."""
    run(capsys, lab, tmp_path, linux_tasks({"name": "web", "ports": ["vnet*"]}))
    restart_libvirt(lab.name)
    vms.sh("echo '{broken' > /etc/vnetctl/attach/port_group/br-vg/web.json")
    guest = Guest("refused", Nic(bridge="br-vg"))
    vms.define(guest)
    try:
        done = host_exec(lab.name, lab.host_names[0],
                         ["virsh", "-q", "-c", "qemu:///system", "start", "refused"])  # fmt: skip
        assert done.returncode != 0 and "vnetctl port_group hook, refused start" in done.stderr
        assert "refused" not in vms.names(running=True)
    finally:
        vms.remove(guest.name)
