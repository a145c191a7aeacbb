"""`vnetctl trace --probe` on a two-host lab (issue 29): a VXLAN mesh (VNI 100: a Linux
bridge on the source host, Open vSwitch with the VM's port and the VXLAN device in VLAN 10
on the destination host), a VM-like port on each host (a veth whose guest end is in a
namespace of the host's own, as a VM's NIC) and a tap on each, held open by a small
process of the test's own as qemu holds a VM's (carrier up), in the Linux bridge on one
host and in OVS on the other.
Marked frames sent from the source VM are seen at every device of a healthy path and
delivered; with the VXLAN peer's flood entry deleted they are last seen leaving the
source host's VXLAN device; with the destination port in the wrong VLAN, arriving on the
destination host's VXLAN device. From a tap the same, its frames entering the tap's
receive path through the probe's own veth pair, gone afterwards. The trace is built by
hand: the probe reads the dict alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.labhosts import own_lab, wait_until
from vnetctl.catalog import Catalog
from vnetctl.cli.main import main
from vnetctl.fleet.context import RunContext
from vnetctl.inventory.loader import load_inventory
from vnetctl.lab import host_exec
from vnetctl.lab.lab import in_host_argv
from vnetctl.trace.probe import _play as play
from vnetctl.trace.probe import _run as probe_plays
from vnetctl.trace.probe import run_probe

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
SRC_MAC, DST_MAC = "52:54:00:29:00:01", "52:54:00:29:00:02"
VM = {0: ("vnet0", SRC_MAC, "vm-a"), 1: ("vnet1", DST_MAC, "vm-b")}
TAP = {0: ("tap29a", "52:54:00:29:00:03"), 1: ("tap29b", "52:54:00:29:00:04")}
HOLD_S = 600  # a tap holder's lifetime, should the test's own kill never come
# as qemu does: open /dev/net/tun, TUNSETIFF (IFF_TAP | IFF_NO_PI), keep the fd; the
# frames the host sends to the "guest" are read and dropped, so its queue never fills
HOLD = (
    "import fcntl,os,select,struct,sys,time\n"
    "fd=os.open('/dev/net/tun',os.O_RDWR)\n"
    "fcntl.ioctl(fd,0x400454ca,struct.pack('16sH',sys.argv[1].encode(),0x1002))\n"
    "print('up',flush=True)\n"
    "end=time.monotonic()+float(sys.argv[2])\n"
    "while time.monotonic()<end:\n"
    "    if select.select([fd],[],[],1)[0]: os.read(fd,65536)\n"
)


def sh(lab, index, script):
    done = host_exec(lab.name, lab.host_names[index], ["sh", "-ec", script])
    assert done.returncode == 0, f"{script}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("tp", tmp_path_factory.mktemp("tp"), hosts=2, ovs=True) as state:
        assert main(["run", MESH, "-i", str(state.inventory_path), "--format", "json"]) == 0
        for index, (port, mac, ns) in VM.items():
            # the guest end in a namespace with no address and no IPv6: the VM never
            # answers, so no bridge learns the destination's MAC (frames to it flood)
            sh(
                state,
                index,
                f"""
                ip netns add {ns}
                ip netns exec {ns} sysctl -qw net.ipv6.conf.default.disable_ipv6=1
                ip link add {port} mtu 1450 type veth peer name guest netns {ns}
                ip -n {ns} link set guest address {mac} mtu 1450 up
                ip link set {port} up""",
            )
        sh(state, 0, "ip link set vnet0 master br-vx100")
        holders = []
        try:
            holders += [hold_tap(state, index) for index in TAP]
            # the destination host's VNI 100 on Open vSwitch (userspace datapath, the kernel's
            # VXLAN device a port of it), the VM's port and the VXLAN port in VLAN 10: this
            # kernel lacks Linux bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)
            sh(
                state,
                1,
                """
                ip link set vxlan100 nomaster
                ovs-vsctl add-br ovs-vx -- set bridge ovs-vx datapath_type=netdev
                ovs-vsctl add-port ovs-vx vxlan100 tag=10 -- add-port ovs-vx vnet1 tag=10""",
            )
            sh(state, 0, f"ip link set {TAP[0][0]} master br-vx100 up")
            tap = TAP[1][0]
            sh(state, 1, f"ovs-vsctl add-port ovs-vx {tap} tag=10; ip link set {tap} up")
            yield state
        finally:
            for holder in holders:  # by its own pid; the tap goes with its fd
                holder.kill()
                holder.wait(10)
                holder.stdout.close()
        sh(state, 1, "ovs-vsctl --if-exists del-br ovs-vx")
        for index, (port, _, ns) in VM.items():
            sh(state, index, f"ip link del {port}; ip netns del {ns}")


def hold_tap(lab, index) -> subprocess.Popen:
    """A process of the test's own holding host `index`'s tap open, as qemu would."""
    name = TAP[index][0]
    argv = in_host_argv(lab, lab.host(lab.host_names[index]), ["python3", "-c", HOLD, name,
                                                                 str(HOLD_S)])  # fmt: skip
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "up", f"the holder of {name} did not start"
    except BaseException:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()
        raise
    return holder


# per host index: its VM's port, then the devices between it and the underlay
STACK = {
    0: [("port", "vnet0"), ("bridge", "br-vx100"), ("vxlan", "vxlan100")],
    1: [("port", "vnet1"), ("vlan", "vnet1"), ("ovs-flow", "ovs-vx"), ("vxlan", "vxlan100")],
}


def end(lab, index) -> dict:
    port, mac, _ = VM[index]
    return {"kind": "port", "host": lab.host_names[index], "port": port, "mac": mac,
            "ip": f"10.29.0.{index + 1}", "vlan": 10}  # fmt: skip


def trace_of(lab, source=0, tap=False) -> dict:
    """The path from host `source`'s VM (its veth port, or its tap) to the other's veth
    port, hop by hop, as a static trace would give it."""
    dest = 1 - source
    src, dst = end(lab, source), end(lab, dest)
    stack = STACK[source]
    if tap:
        src.update(port=TAP[source][0], mac=TAP[source][1])
        stack = [(layer, src["port"] if dev == stack[0][1] else dev) for layer, dev in stack]
    down = [(src["host"], layer, dev) for layer, dev in stack]
    up = [(dst["host"], layer, dev) for layer, dev in reversed(STACK[dest])]
    underlay = [(src["host"], "underlay", "eth0"), (dst["host"], "underlay", "eth0")]
    hops = [{"host": h, "layer": layer, "device": dev, "decision": "pass", "reason": "-",
             "detail": {}} for h, layer, dev in down + underlay + up]  # fmt: skip
    packet = {"proto": "udp", "port": 4000, "vlan": 10, "size": 1400, "src_mac": src["mac"],
              "dst_mac": dst["mac"], "src_ip": src["ip"], "dst_ip": dst["ip"]}  # fmt: skip
    return {"schema": "vnetctl.trace/1", "source": src, "destination": dst, "packet": packet,
            "verdict": "unknown", "dropped_at": None, "hops": hops, "probe": None}  # fmt: skip


def probe(lab, source=0, count=3, timeout=3.0, tap=False) -> dict:
    context = RunContext(Catalog(), load_inventory([str(lab.inventory_path)]))
    trace = trace_of(lab, source, tap)
    began = time.monotonic()
    found = run_probe(context, trace, count=count, timeout=timeout)
    assert trace["probe"] is found
    print(f"\nprobe from h{source + 1}{' tap' if tap else ''}: "
          f"{time.monotonic() - began:.2f} s wall, load {os.getloadavg()}: {found['seen']} "
          f"last {found['last_seen']}",
          file=sys.stderr)  # fmt: skip
    return found


def at(trace: dict, host: str, device: str) -> dict:
    """last_seen naming `device` on `host` at its first hop."""
    hop = next(i for i, h in enumerate(trace["hops"]) if (h["host"], h["device"]) == (host, device))
    return {"host": host, "device": device, "hop": hop}


@pytest.mark.parametrize("source", [0, 1], ids=["bridge-to-ovs", "ovs-to-bridge"])
def test_a_healthy_path_is_seen_at_every_device_and_delivered(lab, source):
    found, trace = probe(lab, source), trace_of(lab, source)
    assert found["errors"] == {} and found["delivered"] is True
    seen = {(s["host"], s["device"]): s["count"] for s in found["seen"]}
    bridges = {"br-vx100", "ovs-vx"}  # forwarded frames pass a bridge's own device unseen
    path = [(h["host"], h["device"]) for h in trace["hops"] if h["device"] not in bridges]
    assert all(seen.get(place) == 3 for place in path), seen
    dst = trace["destination"]
    assert found["last_seen"] == at(trace, dst["host"], dst["port"])
    port, _, namespace = VM[source]
    assert found["injected"] == {"host": lab.host_names[source], "device": "guest",
                                 "namespace": namespace, "port": port}  # fmt: skip
    directions = {(w["host"], w["device"]): w["directions"] for w in found["watched"]}
    assert directions[(lab.host_names[source], port)] == ["in"]
    assert directions[(dst["host"], dst["port"])] == ["out"]
    for host in lab.host_names:  # the watchers are gone, and their state
        assert host_exec(lab.name, host, ["ls", "/run/vnetctl/path-probe"]).stdout == ""


@pytest.mark.parametrize("source", [0, 1], ids=["bridge-to-ovs", "ovs-to-bridge"])
def test_a_missing_vxlan_peer_is_last_seen_leaving_the_source_vtep(lab, source):
    here, there = lab.host_names[source], lab.host_names[1 - source]
    flood = f"00:00:00:00:00:00 dev vxlan100 dst {lab.hosts[1 - source].address}"
    sh(lab, source, f"bridge fdb del {flood}")
    try:
        found = probe(lab, source)
    finally:
        sh(lab, source, f"bridge fdb append {flood}")
    assert found["delivered"] is False
    assert found["last_seen"] == at(trace_of(lab, source), here, "vxlan100")
    assert not any(s["host"] == there for s in found["seen"])
    assert probe(lab, source)["delivered"] is True  # put back: delivered again


@pytest.mark.parametrize("source", [0, 1], ids=["bridge-to-ovs", "ovs-to-bridge"])
def test_a_wrong_vlan_on_the_ovs_port_is_last_seen_where_the_vlan_parts_them(lab, source):
    """Towards the OVS host: last seen arriving on its VXLAN device; from it: on the
    VM's port, which the frames enter but cannot leave in VLAN 20."""
    h2 = lab.host_names[1]
    sh(lab, 1, "ovs-vsctl set port vnet1 tag=20")
    try:
        found = probe(lab, source)
    finally:
        sh(lab, 1, "ovs-vsctl set port vnet1 tag=10")
    assert found["delivered"] is False
    last = "vxlan100" if source == 0 else "vnet1"
    assert found["last_seen"] == at(trace_of(lab, source), h2, last)


def test_an_underlay_mtu_below_the_overlays_need_is_last_seen_at_the_source_vtep(lab):
    """1400-byte packets from the VM need 1450 bytes on the underlay: with the source
    host's eth0 at 1400 they are encapsulated no further than its VXLAN device."""
    h1 = lab.host_names[0]
    sh(lab, 0, "ip link set dev eth0 mtu 1400")
    try:
        found = probe(lab)
    finally:
        sh(lab, 0, "ip link set dev eth0 mtu 1500")
    assert found["delivered"] is False
    assert found["last_seen"] == at(trace_of(lab), h1, "vxlan100")


def test_a_watcher_no_collect_reaches_stops_at_its_time_bound(lab):
    """The controller gone after `watch`: the watcher ends by itself at its deadline, and a
    later collect still gets its result and removes its state."""
    h2 = lab.host_names[1]
    context = RunContext(Catalog(), load_inventory([str(lab.inventory_path)]))
    marker = "0123456789abcdef"
    watch = {h2: {"action": "watch", "marker": marker, "devices": ["eth0"], "timeout": 1.0}}
    run = probe_plays(context, [h2], [play("watch", watch)])
    assert all(r.status.value == "ok" for r in run.results), run.results
    state = f"/run/vnetctl/path-probe/{marker}"
    pid = json.loads(host_exec(lab.name, h2, ["cat", f"{state}/watcher"]).stdout)["pid"]
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, "the watcher to end")
    run = probe_plays(context, [h2], [play("collect", {h2: {"action": "collect",
                                                             "marker": marker}})])  # fmt: skip
    (collected,) = run.results
    assert collected.data["end"] == "time" and collected.data["elapsed_s"] >= 1.0
    assert host_exec(lab.name, h2, ["ls", "/run/vnetctl/path-probe"]).stdout == ""


def helper_pair_gone(lab, index, marker):
    names = (f"vpr{marker[:10]}s", f"vpr{marker[:10]}r")
    show = [["ip", "link", "show", "dev", name] for name in names]
    return all(host_exec(lab.name, lab.host_names[index], argv).returncode for argv in show)


@pytest.mark.parametrize("source", [0, 1], ids=["bridge-to-ovs", "ovs-to-bridge"])
def test_from_a_tap_the_frames_enter_as_the_vms_and_are_delivered(lab, source):
    """The tap's receive path, as qemu's writes take it: the Linux bridge or OVS forwards
    the frames; the probe's veth pair is gone afterwards, on the host, by its name."""
    found, trace = probe(lab, source, tap=True), trace_of(lab, source, tap=True)
    assert found["errors"] == {} and found["delivered"] is True, found
    seen = {(s["host"], s["device"]): s["count"] for s in found["seen"]}
    bridges = {"br-vx100", "ovs-vx"}
    path = [(h["host"], h["device"]) for h in trace["hops"] if h["device"] not in bridges]
    assert all(seen.get(place) == 3 for place in path), seen
    here, tap = lab.host_names[source], TAP[source][0]
    sender = f"vpr{found['marker'][:10]}s"
    assert found["injected"] == {"host": here, "device": sender, "namespace": None,
                                 "port": tap, "via": "tc mirred ingress redirect"}  # fmt: skip
    directions = {(w["host"], w["device"]): w["directions"] for w in found["watched"]}
    assert directions[(here, tap)] == ["in"]  # received on the tap, as from the guest
    assert helper_pair_gone(lab, source, found["marker"])
    assert host_exec(lab.name, here, ["ls", "/run/vnetctl/path-probe"]).stdout == ""


@pytest.mark.parametrize("source", [0, 1], ids=["bridge-to-ovs", "ovs-to-bridge"])
def test_from_a_tap_a_missing_peer_and_a_wrong_vlan_are_found(lab, source):
    here, h2 = lab.host_names[source], lab.host_names[1]
    trace = trace_of(lab, source, tap=True)
    flood = f"00:00:00:00:00:00 dev vxlan100 dst {lab.hosts[1 - source].address}"
    sh(lab, source, f"bridge fdb del {flood}")
    try:
        found = probe(lab, source, tap=True)
    finally:
        sh(lab, source, f"bridge fdb append {flood}")
    assert found["delivered"] is False and found["errors"] == {}
    assert found["last_seen"] == at(trace, here, "vxlan100")
    assert helper_pair_gone(lab, source, found["marker"])
    # towards OVS: the destination's port in VLAN 20; from OVS: the tap itself in VLAN 20
    port = "vnet1" if source == 0 else TAP[1][0]
    sh(lab, 1, f"ovs-vsctl set port {port} tag=20")
    try:
        found = probe(lab, source, tap=True)
    finally:
        sh(lab, 1, f"ovs-vsctl set port {port} tag=10")
    assert found["delivered"] is False and found["errors"] == {}
    assert found["last_seen"] == at(trace, h2, "vxlan100" if source == 0 else port)
    assert helper_pair_gone(lab, source, found["marker"])


def test_from_a_tap_a_bridge_firewall_rule_on_the_vms_mac_drops_the_probe(lab):
    """The nftables bridge hooks see the probe's frames as the VM's: a rule dropping
    the VM's source MAC on forward stops them after the tap, counted by the rule."""
    h1, mac = lab.host_names[0], TAP[0][1]
    rules = ("add table bridge tp29\n"
             "add chain bridge tp29 fw { type filter hook forward priority 0; }\n"
             f"add rule bridge tp29 fw ether saddr {mac} counter drop\n")  # fmt: skip
    done = host_exec(lab.name, h1, ["nft", "-f", "-"], input=rules)
    assert done.returncode == 0, done.stderr
    try:
        found = probe(lab, 0, tap=True)
        counted = sh(lab, 0, "nft list chain bridge tp29 fw")
    finally:
        sh(lab, 0, "nft delete table bridge tp29")
    assert found["delivered"] is False and found["errors"] == {}, found
    assert found["last_seen"] == at(trace_of(lab, 0, tap=True), h1, TAP[0][0])
    assert int(counted.split("counter packets ")[1].split()[0]) >= 3  # once per port flooded to
    assert helper_pair_gone(lab, 0, found["marker"])


def test_an_inject_cut_off_leaves_its_pair_to_the_watcher_which_removes_it(lab):
    """The inject killed after making its pair (recorded in the watch's state first, as
    it does): the watcher removes the pair when its time bound ends, no collect needed."""
    h1 = lab.host_names[0]
    context = RunContext(Catalog(), load_inventory([str(lab.inventory_path)]))
    marker = "fedcba9876543210"
    watch = {h1: {"action": "watch", "marker": marker, "devices": ["eth0"], "timeout": 2.0}}
    run = probe_plays(context, [h1], [play("watch", watch)])
    assert all(r.status.value == "ok" for r in run.results), run.results
    state, sender = f"/run/vnetctl/path-probe/{marker}", f"vpr{marker[:10]}s"
    sh(lab, 0, f"""echo '{{"links": ["{sender}"]}}' > {state}/helpers""")
    sh(lab, 0, f"ip link add {sender} type veth peer name vpr{marker[:10]}r")
    assert not helper_pair_gone(lab, 0, marker)
    wait_until(lambda: helper_pair_gone(lab, 0, marker), 10, "the watcher to remove the pair")
    run = probe_plays(context, [h1], [play("collect", {h1: {"action": "collect",
                                                             "marker": marker}})])  # fmt: skip
    assert run.results[0].data["end"] == "time"
    assert host_exec(lab.name, h1, ["ls", "/run/vnetctl/path-probe"]).stdout == ""
