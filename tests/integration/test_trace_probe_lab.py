"""`vnetctl trace --probe` on a two-host lab (issue 29): a VXLAN mesh (VNI 100: a Linux
bridge on the source host, Open vSwitch with the VM's port and the VXLAN device in VLAN 10
on the destination host), a VM-like port on each host (a veth whose guest end is in a
namespace of the host's own, as a VM's NIC).
Marked frames sent from the source VM are seen at every device of a healthy path and
delivered; with the VXLAN peer's flood entry deleted they are last seen leaving the
source host's VXLAN device; with the destination port in the wrong VLAN, arriving on the
destination host's VXLAN device. The trace is built by hand: the probe reads the dict
alone."""

from __future__ import annotations

import json
import os
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
from vnetctl.trace.probe import _play as play
from vnetctl.trace.probe import _run as probe_plays
from vnetctl.trace.probe import run_probe

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
SRC_MAC, DST_MAC = "52:54:00:29:00:01", "52:54:00:29:00:02"
VM = {0: ("vnet0", SRC_MAC, "vm-a"), 1: ("vnet1", DST_MAC, "vm-b")}


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
        yield state
        sh(state, 1, "ovs-vsctl --if-exists del-br ovs-vx")
        for index, (port, _, ns) in VM.items():
            sh(state, index, f"ip link del {port}; ip netns del {ns}")


def trace_of(lab) -> dict:
    h1, h2 = lab.host_names
    hop = lambda host, layer, dev, decision: {  # noqa: E731
        "host": host, "layer": layer, "device": dev, "decision": decision, "reason": "-",
        "detail": {}}  # fmt: skip
    return {
        "schema": "vnetctl.trace/1",
        "source": {
            "kind": "port",
            "host": h1,
            "port": "vnet0",
            "mac": SRC_MAC,
            "ip": "10.29.0.1",
            "vlan": 10,
        },  # fmt: skip
        "destination": {
            "kind": "port",
            "host": h2,
            "port": "vnet1",
            "mac": DST_MAC,
            "ip": "10.29.0.2",
            "vlan": 10,
        },  # fmt: skip
        "packet": {
            "proto": "udp",
            "port": 4000,
            "vlan": 10,
            "size": 1400,
            "src_mac": SRC_MAC,
            "dst_mac": DST_MAC,
            "src_ip": "10.29.0.1",
            "dst_ip": "10.29.0.2",
        },  # fmt: skip
        "verdict": "unknown",
        "dropped_at": None,
        "hops": [
            hop(h1, "port", "vnet0", "pass"),
            hop(h1, "bridge", "br-vx100", "flood"),
            hop(h1, "vxlan", "vxlan100", "encapsulate"),
            hop(h1, "underlay", "eth0", "forward"),
            hop(h2, "underlay", "eth0", "forward"),
            hop(h2, "vxlan", "vxlan100", "decapsulate"),
            hop(h2, "ovs-flow", "ovs-vx", "forward"),
            hop(h2, "vlan", "vnet1", "pass"),
            hop(h2, "port", "vnet1", "deliver"),
        ],
        "probe": None,
    }


def probe(lab, count=3, timeout=3.0) -> dict:
    context = RunContext(Catalog(), load_inventory([str(lab.inventory_path)]))
    trace = trace_of(lab)
    began = time.monotonic()
    found = run_probe(context, trace, count=count, timeout=timeout)
    assert trace["probe"] is found
    print(f"\nprobe: {time.monotonic() - began:.2f} s wall, load {os.getloadavg()}: "
          f"{found['seen']} last {found['last_seen']}", file=sys.stderr)  # fmt: skip
    return found


def test_a_healthy_path_is_seen_at_every_device_and_delivered(lab):
    h1, h2 = lab.host_names
    found = probe(lab)
    assert found["errors"] == {} and found["delivered"] is True
    seen = {(s["host"], s["device"]): s["count"] for s in found["seen"]}
    path = [(h1, "vnet0"), (h1, "vxlan100"), (h1, "eth0"), (h2, "eth0"), (h2, "vxlan100"),
            (h2, "vnet1")]  # fmt: skip
    assert all(seen.get(place) == 3 for place in path), seen
    assert found["last_seen"] == {"host": h2, "device": "vnet1", "hop": 7}
    assert found["injected"] == {"host": h1, "device": "guest", "namespace": "vm-a",
                                 "port": "vnet0"}  # fmt: skip
    directions = {(w["host"], w["device"]): w["directions"] for w in found["watched"]}
    assert directions[(h1, "vnet0")] == ["in"] and directions[(h2, "vnet1")] == ["out"]
    for host in lab.host_names:  # the watchers are gone, and their state
        assert host_exec(lab.name, host, ["ls", "/run/vnetctl/path-probe"]).stdout == ""


def test_a_missing_vxlan_peer_is_last_seen_leaving_the_source_vtep(lab):
    h1, h2 = lab.host_names
    peer = lab.hosts[1].address
    flood = f"00:00:00:00:00:00 dev vxlan100 dst {peer}"
    sh(lab, 0, f"bridge fdb del {flood}")
    try:
        found = probe(lab)
    finally:
        sh(lab, 0, f"bridge fdb append {flood}")
    assert found["delivered"] is False
    assert found["last_seen"] == {"host": h1, "device": "vxlan100", "hop": 2}
    assert not any(s["host"] == h2 for s in found["seen"])
    assert probe(lab)["delivered"] is True  # put back: delivered again


def test_a_wrong_vlan_on_the_destination_port_is_last_seen_arriving_there(lab):
    h2 = lab.host_names[1]
    sh(lab, 1, "ovs-vsctl set port vnet1 tag=20")
    try:
        found = probe(lab)
    finally:
        sh(lab, 1, "ovs-vsctl set port vnet1 tag=10")
    assert found["delivered"] is False
    assert found["last_seen"] == {"host": h2, "device": "vxlan100", "hop": 5}


def test_a_tap_is_refused_as_a_source_saying_why(lab):
    sh(lab, 0, "ip tuntap add dev tap29 mode tap")
    try:
        context = RunContext(Catalog(), load_inventory([str(lab.inventory_path)]))
        trace = trace_of(lab)
        trace["source"]["port"] = "tap29"
        found = run_probe(context, trace, count=1, timeout=1.0)
    finally:
        sh(lab, 0, "ip link del tap29")
    assert "is a tap" in found["errors"][lab.host_names[0]]
    assert found["injected"] is None and found["seen"] == [] and not found["delivered"]


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
