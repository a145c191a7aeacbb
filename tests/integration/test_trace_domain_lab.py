"""`vnetctl trace DOMAIN[:NIC] ...` with a real libvirtd: a guest that libvirt runs on
the second host (its one NIC on the VXLAN mesh's br-vx100, qemu started paused: libvirt
writes its status file and makes its tap as for a running guest, and the guest costs no
CPU) is found by its domain's name alone, by NIC index, alias, MAC and tap, and with its
host; the port is the tap libvirt made (`virsh domiflist`), on that host, and the trace
reaches the first host's VM-like port over VXLAN."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.labhosts import lab_skip_reason, own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec
from vnetctl.lab.vm.domain_xml import Guest, Nic
from vnetctl.lab.vm.guests import LabGuests

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
MESH_OVS = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh-ovs.yml")
DOMAIN, ON_OVS = "td-web", "td-ovs"
VM1_MAC = "52:54:00:7b:00:01"


def sh(lab, host, *argv):
    return host_exec(lab.name, host, list(argv), check=True).stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    with own_lab("td", tmp_path_factory.mktemp("td"), hosts=2, ovs=True, libvirt=True) as state:
        for mesh in (MESH, MESH_OVS):
            assert main(["run", mesh, "-i", str(state.inventory_path), "--format", "json"]) == 0
        h1 = state.host_names[0]
        sh(state, h1, "ip", "link", "add", "vm1", "type", "veth", "peer", "name", "vm1p")
        sh(state, h1, "ip", "link", "set", "vm1", "address", VM1_MAC, "mtu", "1450", "up")
        sh(state, h1, "ip", "link", "set", "vm1p", "master", "br-vx100", "mtu", "1450", "up")
        sh(state, h1, "ip", "addr", "add", "192.168.100.1/24", "dev", "vm1")
        yield state


@pytest.fixture(scope="module")
def guest(lab):
    """The domain running (paused) on the second host: (its Guest, its tap)."""
    guests = LabGuests(lab.name, lab.host_names[1])
    web = Guest(name=DOMAIN, nic=Nic(bridge="br-vx100"))
    try:
        guests.define(web)
        guests.virsh("start", "--paused", DOMAIN)
        wait_until(lambda: guests.state(DOMAIN) == "paused", 30, f"{DOMAIN} paused")
        yield web, guests.taps(DOMAIN)[0]
    finally:
        guests.remove(DOMAIN)


@pytest.fixture
def ovs_guest(lab):
    """A second domain, its NIC on Open vSwitch's br-ovs300 (libvirt's virtualport)."""
    guests = LabGuests(lab.name, lab.host_names[1])
    try:
        guests.define(Guest(name=ON_OVS, nic=Nic(bridge="br-ovs300", ovs=True)))
        guests.virsh("start", "--paused", ON_OVS)
        wait_until(lambda: guests.state(ON_OVS) == "paused", 30, f"{ON_OVS} paused")
        yield guests.taps(ON_OVS)[0]
    finally:
        guests.remove(ON_OVS)


def trace(capsys, lab, *argv) -> tuple[int, dict]:
    code = main(["trace", *argv, "-i", str(lab.inventory_path), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_domains_nic_is_its_tap_on_the_host_that_runs_it(lab, guest, capsys):
    web, tap = guest
    h1, h2 = lab.host_names
    started, load = time.monotonic(), Path("/proc/loadavg").read_text().split()[0]
    code, doc = trace(capsys, lab, f"{DOMAIN}:net0", "vm1")
    wall = time.monotonic() - started
    with capsys.disabled():
        print(f"\ntrace {DOMAIN}:net0 -> vm1: {wall:.2f}s wall, load {load}, {doc['timing']}")
    source = doc["source"]
    assert (source["host"], source["port"], source["kind"]) == (h2, tap, "vm"), source
    assert source["mac"] == web.mac and source["domain"] == {
        "name": DOMAIN, "nic": 0, "alias": "net0"}  # fmt: skip
    assert (doc["destination"]["host"], doc["destination"]["port"]) == (h1, "vm1p")
    first = doc["hops"][0]
    assert (first["host"], first["layer"], first["device"]) == (h2, "port", tap)
    assert any(h["layer"] == "vxlan" and h["host"] == h2 for h in doc["hops"]), doc["hops"]
    for token in (DOMAIN, f"{DOMAIN}:0", f"{DOMAIN}:{web.mac.upper()}", f"{DOMAIN}:{tap}",
                  f"{h2}:{DOMAIN}:0", f"{h2}:{DOMAIN}", web.mac):  # fmt: skip
        _, other = trace(capsys, lab, "vm1", token)
        found = other["destination"]
        assert (found["host"], found["port"], (found["domain"] or {}).get("name")) == (
            h2, tap, DOMAIN), (token, found)  # fmt: skip


def test_a_domain_that_is_not_running_or_a_nic_it_lacks_is_refused(lab, guest, capsys):
    h1 = lab.host_names[0]
    for token, said in ((f"{DOMAIN}:1", "1 is no NIC of domain"),
                        (f"{h1}:{DOMAIN}", f"no port, libvirt domain, MAC or address {DOMAIN}"),
                        (f"{h1}:{DOMAIN}:0", f"no libvirt domain {DOMAIN} runs on {h1}"),
                        ("td/web:0", "is no libvirt domain name")):  # fmt: skip
        code = main(["trace", token, "vm1", "-i", str(lab.inventory_path)])
        assert code == 1 and said in capsys.readouterr().err, token


def test_a_domains_nic_on_open_vswitch_is_its_tap_there(lab, guest, ovs_guest, capsys):
    h2 = lab.host_names[1]
    _, doc = trace(capsys, lab, ON_OVS, "vm1")
    source, first = doc["source"], doc["hops"][0]
    assert (source["host"], source["port"], source["domain"]["name"]) == (h2, ovs_guest, ON_OVS)
    assert (first["host"], first["layer"], first["device"]) == (h2, "port", ovs_guest)
    assert any(h["layer"] == "ovs-flow" for h in doc["hops"]), doc["hops"]
