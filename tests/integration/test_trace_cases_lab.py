"""Issue 29's broken layers on Linux bridges, each found statically and with `--probe`
through the command line (`vnetctl trace ... --probe --format json`), h1 -> h2 and
h2 -> h1: port security against a forged source MAC (port_group), a tc class at its
limit, a missing VXLAN peer, the underlay MTU below the overlay's need. The lab is
test_trace_lab's (two hosts, playbooks/vxlan-mesh.yml, a VM-like veth on each).
Open vSwitch: test_trace_cases_ovs_lab.py."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.integration import test_trace_lab as linux
from tests.integration.test_trace_lab import MACS, class_drops, host_of
from tests.integration.test_trace_ovs_lab import dropped
from tests.integration.trace_cases import BOTH, probed, seen
from tests.labhosts import wait_until
from vnetctl.cli.main import main
from vnetctl.lab.lab import in_host_argv

pytestmark = pytest.mark.lab

lab, lab_sh = linux.lab, linux.sh  # the lab: test_trace_lab's fixture


@BOTH
def test_a_forged_mac_stops_at_its_port_by_port_groups_rule(lab, capsys, tmp_path, src):
    """The source port guarded by port_group, declaring another MAC than the VM sends
    from: statically the rule `ether-source` at that port; the probe's frames enter the
    port and are seen nowhere after it."""
    here, there = lab.host_names[src - 1], lab.host_names[2 - src]
    group = {"name": "web", "bridge": "br-vx100", "ports": [f"vm{src}p"],
             "port_security": True,
             "guests": [{"port": f"vm{src}p", "mac": "52:54:00:66:66:66"}]}  # fmt: skip
    playbook = tmp_path / "guard.yml"
    tasks = [{"name": "guard", "port_group": group}]
    playbook.write_text(yaml.safe_dump([{"name": "g", "hosts": here, "tasks": tasks}]))
    assert main(["run", str(playbook), "-i", str(lab.inventory_path), "--format", "json"]) == 0
    capsys.readouterr()
    try:
        code, doc = probed(capsys, lab, f"{here}:{MACS[src]}", f"{there}:vm{3 - src}")
    finally:
        lab_sh(lab, here, "nft", "delete", "table", "bridge", "vnetctl")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (
        here,
        "security",
        f"vm{src}p",
    )
    assert hop["detail"]["rule"] == "ether-source" and MACS[src] in hop["reason"]
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert probe["last_seen"] == {"host": here, "device": f"vm{src}p", "hop": 0}
    assert seen(doc) == {(here, f"vm{src}p"): 3}


def limited(lab, capsys, src, rate, *more) -> tuple[int, dict]:
    """The trace with --probe while the destination port's only HTB class (`rate`, a
    pfifo of 2 packets) is at its limit under a flood ping from the source host."""
    here, there = lab.host_names[src - 1], lab.host_names[2 - src]
    dst, port = 3 - src, f"vm{3 - src}p"
    for argv in (f"qdisc add dev {port} root handle 1: htb default 10",
                 f"class add dev {port} parent 1: classid 1:10 htb rate {rate} ceil {rate} "
                 "burst 2k",
                 f"qdisc add dev {port} parent 1:10 handle 10: pfifo limit 2"):  # fmt: skip
        lab_sh(lab, there, "tc", *argv.split())
    flood = in_host_argv(*host_of(lab, here), ["ping", "-f", "-q", "-s", "1000", "-w", "30",
                                               f"192.168.100.{dst}"])  # fmt: skip
    try:
        with subprocess.Popen(flood, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as p:
            try:
                wait_until(lambda: class_drops(lab, there, port) > 0, 10, "drops in 1:10")
                return probed(capsys, lab, f"{here}:vm{src}", f"{there}:vm{dst}", *more)
            finally:
                p.terminate()
    finally:
        lab_sh(lab, there, "tc", "qdisc", "del", "dev", port, "root")


@BOTH
def test_a_tc_class_whose_queue_is_full_drops_the_probe_at_the_destination_port(
    lab,
    capsys,
    src,
):
    """The destination port's HTB class at its limit: its queue (pfifo, 2 packets) full
    under a flood ping and drained at 8 bit/s, so every frame more is dropped. Statically
    the class with its drops rising; the probe's frames reach the destination host's
    VXLAN device and are never sent out of the port (a packet socket sees a frame leave
    after the qdisc passed it)."""
    there, port = lab.host_names[2 - src], f"vm{3 - src}p"
    code, doc = limited(lab, capsys, src, "8bit")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (there, "tc", port)
    assert hop["detail"]["class"] == "1:10" and hop["detail"]["drops_rising"] > 0
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert seen(doc)[(there, "vxlan100")] == 3 and (there, port) not in seen(doc)
    assert probe["last_seen"]["host"] == there and probe["last_seen"]["device"] == "vxlan100"


@BOTH
def test_a_tc_class_at_its_limit_that_still_passes_some_shows_per_hop_counts(lab, capsys, src):
    """A class that still passes 64 kbit/s under the flood: the static trace names it
    (drops rising); the probe's frames all reach the destination host's VXLAN device and
    at most all leave by the port. They arrive together, within a millisecond, at a queue
    the flood keeps full: in the lab none of 20 passed (4 runs, both ways), but one can
    slip in as a slot frees, so the probe is no verdict on such a class: its counts per
    hop say how many of its own frames passed, the static trace why."""
    there, port = lab.host_names[2 - src], f"vm{3 - src}p"
    code, doc = limited(lab, capsys, src, "64kbit", "--probe-count", "20")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (there, "tc", port)
    counts = seen(doc)
    assert counts[(there, "vxlan100")] == 20 and counts.get((there, port), 0) <= 20


@BOTH
def test_a_missing_vxlan_peer_is_named_and_the_probe_stops_at_the_source_vtep(lab, capsys, src):
    """The source host's flood entry to the other VTEP deleted: statically the vxlan hop's
    fdb; the probe's frames are last seen on the source host's VXLAN device."""
    here, there = lab.host_names[src - 1], lab.host_names[2 - src]
    vtep = lab.hosts[2 - src].address
    flood = ["00:00:00:00:00:00", "dev", "vxlan100", "dst", vtep]
    lab_sh(lab, here, "bridge", "fdb", "del", *flood)
    try:
        code, doc = probed(capsys, lab, f"{here}:vm{src}", f"{there}:vm{3 - src}")
    finally:
        lab_sh(lab, here, "bridge", "fdb", "append", *flood)
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (here, "vxlan", "vxlan100")
    assert hop["detail"]["setting"] == "fdb" and vtep in hop["reason"]
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert (probe["last_seen"]["host"], probe["last_seen"]["device"]) == (here, "vxlan100")
    assert not any(s["host"] == there for s in probe["seen"]), probe["seen"]


@BOTH
def test_an_underlay_mtu_below_the_overlays_need_stops_the_probe_at_the_source_vtep(
    lab, capsys, src
):
    """The source host's eth0 at 1400 under the 1450 overlay: statically the mtu hop, the
    largest packet 1350; the probe's 1450-byte packets (don't-fragment) are encapsulated
    no further than the source host's VXLAN device."""
    here, there = lab.host_names[src - 1], lab.host_names[2 - src]
    lab_sh(lab, here, "ip", "link", "set", "dev", "eth0", "mtu", "1400")
    try:
        code, doc = probed(capsys, lab, f"{here}:vm{src}", f"{there}:vm{3 - src}")
    finally:
        lab_sh(lab, here, "ip", "link", "set", "dev", "eth0", "mtu", "1500")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (here, "mtu", "eth0")
    assert hop["detail"]["underlay_mtu"] == 1400 and hop["detail"]["largest"] == 1350
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert (probe["last_seen"]["host"], probe["last_seen"]["device"]) == (here, "vxlan100")
    assert (here, "eth0") not in seen(doc) and not any(s["host"] == there for s in probe["seen"])
