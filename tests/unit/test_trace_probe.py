"""trace --probe without hosts (issue 29): the marked frames (valid checksums, the
packet's size, found again inside a VXLAN packet), the refusals before any host, which
devices of a trace are watched, where the VM's side of a port is (a tap's receive
path through the probe's own veth pair), and the report from
recorded play results. The probe on real hosts: tests/integration/test_trace_probe_lab.py."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.inventory.loader import load_inventory
from vnetctl.runner.results import RunResult, Status, TaskResult
from vnetctl.trace.probe import path_devices, run_probe, summary

CATALOG = Catalog()
probe_module = CATALOG.load("path_probe")
frames = probe_module.frames
host = CATALOG.host_lib()
TRACE = json.loads((Path(__file__).parent / "fixtures/trace/vlan-drop-probed.json").read_text())
MARKER = "00112233aabbccdd"
V4 = {"proto": "udp", "port": 4000, "size": 1400, "src_mac": "52:54:00:29:00:01",
      "dst_mac": "52:54:00:29:00:02", "src_ip": "10.29.0.1", "dst_ip": "10.29.0.2"}  # fmt: skip


def pseudo_sum_ok(ip_src: bytes, ip_dst: bytes, number: int, l4: bytes, v6: bool) -> bool:
    if v6:
        pseudo = ip_src + ip_dst + struct.pack("!I3xB", len(l4), number)
    else:
        pseudo = ip_src + ip_dst + struct.pack("!xBH", number, len(l4))
    return frames.checksum(pseudo + l4) == 0


@pytest.mark.parametrize("proto,number", [("udp", 17), ("tcp", 6), ("icmp", 1)])
def test_ipv4_frames_have_the_packets_size_and_valid_checksums(proto, number):
    sent = frames.frames(dict(V4, proto=proto), MARKER, 3)
    assert len(sent) == 3
    for seq, frame in enumerate(sent):
        ip = frame[14:]
        assert frame[12:14] == b"\x08\x00" and len(ip) == 1400
        assert struct.unpack("!H", ip[2:4])[0] == 1400 and ip[9] == number
        assert struct.unpack("!H", ip[6:8])[0] & 0x4000  # don't fragment
        assert frames.checksum(ip[:20]) == 0
        if proto == "icmp":
            assert ip[20] == 8 and frames.checksum(ip[20:]) == 0
        else:
            assert pseudo_sum_ok(ip[12:16], ip[16:20], number, ip[20:], False)
        assert frames.sequences(frame, bytes.fromhex(MARKER)) == {seq}


@pytest.mark.parametrize("proto,number", [("udp", 17), ("tcp", 6), ("icmp", 58)])
def test_ipv6_frames_have_valid_checksums(proto, number):
    packet = dict(V4, proto=proto, src_ip="fd29::1", dst_ip="fd29::2", size=1280)
    frame = frames.frames(packet, MARKER, 1)[0]
    ip = frame[14:]
    assert frame[12:14] == b"\x86\xdd" and len(ip) == 1280 and ip[6] == number
    assert pseudo_sum_ok(ip[8:24], ip[24:40], number, ip[40:], True)


def test_the_marker_is_found_inside_a_vxlan_packet_and_not_with_another_marker():
    inner = frames.frames(V4, MARKER, 2)[1]
    outer = b"\x00" * 14 + b"\x45" + b"\x00" * 19 + struct.pack("!HHHH", 40000, 4789, 0, 0)
    vxlan = outer + b"\x08\x00\x00\x00\x00\x00\x64\x00" + inner
    assert frames.sequences(vxlan, bytes.fromhex(MARKER)) == {1}
    assert frames.sequences(vxlan, bytes.fromhex("ffffffffffffffff")) == set()
    assert frames.sequences(inner[: -1400 + 40], bytes.fromhex(MARKER)) == set()  # cut short


def test_a_bare_ethernet_frame_without_addresses():
    frame = frames.frames({"src_mac": V4["src_mac"], "dst_mac": V4["dst_mac"]}, MARKER, 1)[0]
    assert frame[12:14] == b"\x88\xb5" and len(frame) >= 60


@pytest.mark.parametrize("change,why", [
    ({"src_mac": "52:54:00:29:00"}, "not a MAC"),
    ({"dst_mac": "52:54:00:29:00:0g"}, "not a MAC"),
    ({"dst_ip": None}, "go together"),
    ({"dst_ip": "fd29::2"}, "different families"),
    ({"dst_ip": "10.29.0.2%eth0"}, "does not appear to be"),
    ({"proto": "sctp"}, "not one of"),
])  # fmt: skip
def test_packets_that_make_no_frame_are_refused(change, why):
    assert why in frames.problem(dict(V4, **change))


def test_only_device_names_a_host_command_may_take_are_watched():
    trace = copy.deepcopy(TRACE)
    trace["hops"][2]["device"] = "br;rm -rf /"
    trace["hops"][3]["device"] = "-vxlan100"
    devices, bad = path_devices(trace)
    assert [(h, d) for h, d, _, _ in devices] == [
        ("kvm-a1", "vnet0"), ("kvm-a1", "eth0"), ("kvm-b7", "eth0"), ("kvm-b7", "vxlan100"),
        ("kvm-b7", "ovs-vx"), ("kvm-b7", "vnet1")]  # fmt: skip
    assert {b["device"] for b in bad} == {"br;rm -rf /", "-vxlan100"}
    assert all(b["why"].startswith("not a device name") for b in bad)


def test_the_ports_are_watched_even_when_no_hop_names_them():
    trace = {
        "source": {"host": "a", "port": "vnet0"},
        "destination": {"host": "b", "port": "vnet9"},
        "hops": [{"host": "a", "device": "br0", "layer": "bridge"}],
    }
    devices, _ = path_devices(trace)
    assert devices == [("a", "vnet0", "port", -1), ("a", "br0", "bridge", 0),
                       ("b", "vnet9", "port", 1)]  # fmt: skip
    trace["hops"].insert(0, {"host": "a", "device": "vnet0", "layer": "security"})
    devices, _ = path_devices(trace)  # named by a hop: counted there
    assert devices[0] == ("a", "vnet0", "security", 0)


def test_an_ovs_bonds_members_are_watched_at_its_hop():
    """`uplink` is no device: the members are, so the probe says which one carried it."""
    bond = {"host": "a", "device": "uplink", "layer": "bond",
            "detail": {"enabled": ["eth1"], "disabled": ["eth2"]}}  # fmt: skip
    trace = {"source": {"host": "a", "port": "web1"}, "hops": [bond]}
    devices, _ = path_devices(trace)
    assert devices == [("a", "web1", "port", -1), ("a", "uplink", "bond", 0),
                       ("a", "eth1", "bond", 0), ("a", "eth2", "bond", 0)]  # fmt: skip


@pytest.fixture
def context(tmp_path):
    (tmp_path / "hosts").write_text("[kvm]\nkvm-a1 ansible_host=192.0.2.1\n"
                                    "kvm-b7 ansible_host=192.0.2.2\n")  # fmt: skip
    return RunContext(CATALOG, load_inventory(tmp_path / "hosts"))


@pytest.mark.parametrize("change,why", [
    ({"packet": dict(TRACE["packet"], src_mac="zz")}, "not a MAC"),
    ({"source": {"host": "kvm-a1"}}, "needs a source port"),
    ({"source": dict(TRACE["source"], port="vnet 0")}, "port"),
    ({"destination": dict(TRACE["destination"], host="elsewhere")}, "not in the inventory"),
])  # fmt: skip
def test_bad_input_is_refused_before_any_host_is_reached(context, change, why):
    trace = dict(copy.deepcopy(TRACE), probe=None, **change)
    with pytest.raises(InputError, match=why):
        run_probe(context, trace)
    assert trace["probe"] is None


def result(host, task, data=None, status=Status.OK):
    return TaskResult(host, "p", 0, task, "path_probe", status, data=data or {})


def test_the_report_is_last_seen_at_the_furthest_device_that_saw_a_frame():
    devices, _ = path_devices(TRACE)
    run = RunResult(results=[
        result("kvm-a1", "probe watch", {"watched": ["vnet0", "br-vx100", "vxlan100", "eth0"],
                                         "not_watched": {}}),
        result("kvm-b7", "probe watch", {"watched": ["eth0", "vxlan100", "ovs-vx", "vnet1"],
                                         "not_watched": {"x0": "no such device"}}),
        result("kvm-a1", "probe inject", {"injected_at": {"device": "guest", "namespace": "vm",
                                                          "port": "vnet0"}}),
        result("kvm-a1", "probe collect", {"devices": {"vnet0": {"count": 3}, "eth0": {
            "count": 2, "capture_drops": 0}, "vxlan100": {"count": 3}}}),
        result("kvm-b7", "probe collect", {"devices": {"eth0": {"count": 1}}}),
    ])  # fmt: skip
    found = summary(TRACE, run, devices, MARKER, 3)
    assert found["last_seen"] == {"host": "kvm-b7", "device": "eth0", "hop": 5}
    assert [(s["device"], s["count"]) for s in found["seen"]] == [
        ("vnet0", 3), ("vxlan100", 3), ("eth0", 2), ("eth0", 1)]  # fmt: skip
    assert found["delivered"] is False and found["errors"] == {}
    assert found["injected"]["host"] == "kvm-a1"
    assert found["not_watched"] == [{"host": "kvm-b7", "device": "x0", "why": "no such device"}]


def test_a_destination_without_an_address_is_probed_with_a_bare_frame(context, monkeypatch):
    """The source has an address, the destination none (an OVS VM port of the lab): the
    static trace's packet has src_ip alone; the probe sends a bare Ethernet frame and
    says why (it refused the whole trace, exit 1, before)."""
    plays = []
    monkeypatch.setattr("vnetctl.trace.probe._run",
                        lambda _c, _h, plans: plays.extend(plans) or RunResult())  # fmt: skip
    trace = copy.deepcopy(TRACE)
    trace["packet"]["dst_ip"] = None
    found = run_probe(context, trace)
    inject = next(p for p in plays if p.play.name == "path probe: inject")
    (task,) = inject.tasks[trace["source"]["host"]]
    assert "src_ip" not in task.args["packet"] and "dst_ip" not in task.args["packet"]
    assert "bare Ethernet frame" in found["frame"]


def test_a_failed_or_refused_phase_is_an_error_of_its_host():
    devices, _ = path_devices(TRACE)
    run = RunResult(results=[
        result("kvm-a1", "probe inject", {"error": "vnet0 is a tap"}),
        result("kvm-b7", "probe watch", status=Status.FAILED),
    ], unreachable={"kvm-c3": "ssh: timed out"})  # fmt: skip
    found = summary(TRACE, run, devices, MARKER, 3)
    assert found["errors"]["kvm-a1"] == "probe inject: vnet0 is a tap"
    assert set(found["errors"]) == {"kvm-a1", "kvm-b7", "kvm-c3"}
    assert found["seen"] == [] and found["last_seen"] is None and found["injected"] is None


def link(name, index, kind=None, **extra):
    info = {"linkinfo": {"info_kind": kind}} if kind else {}
    return {"ifname": name, "ifindex": index, "mtu": 1500, **info, **extra}


def test_the_vm_side_of_a_port_and_what_is_refused():
    facts = host.Facts({"links": [
        link("br0", 6, "bridge"), link("vnet0", 7, "veth", link="guest0"),
        link("guest0", 8, "veth", link="vnet0"), link("vnet1", 9, "veth", link_index=40,
                                                      link_netnsid=0)]})  # fmt: skip
    # `ip -j link` names a peer in its own namespace ("link"), else gives its index and nsid
    assert probe_module.vm_side("vnet0", facts) == (None, "guest0")
    with pytest.raises(host.ModuleError, match="not a veth"):
        probe_module.vm_side("br0", facts)
    with pytest.raises(host.ModuleError, match="no port"):
        probe_module.vm_side("vnet5", facts)


def test_a_peer_in_a_namespace_is_found_by_its_nsid_and_its_name_checked(monkeypatch):
    facts = host.Facts({"links": [link("vnet1", 9, "veth", link_index=40, link_netnsid=3)]})
    links = {"vm-b": [link("lo", 1), link("eth0", 40, "veth")]}
    named = [{"name": "vm-a", "id": 2}, {"name": "vm-b", "id": 3}]
    monkeypatch.setattr(probe_module, "_namespaces", lambda: named)
    monkeypatch.setattr(probe_module.host, "run", lambda argv, **_: json.dumps(links[argv[2]]))
    assert probe_module.vm_side("vnet1", facts) == ("vm-b", "eth0")
    links["vm-b"][1]["ifname"] = "eth0;reboot"
    with pytest.raises(host.ModuleError, match="not a valid"):
        probe_module.vm_side("vnet1", facts)
    monkeypatch.setattr(probe_module, "_namespaces", lambda: [{"id": 3}])
    with pytest.raises(host.ModuleError):
        probe_module.vm_side("vnet1", facts)


def test_a_watch_that_ended_before_collect_came_is_said():
    devices, _ = path_devices(TRACE)
    run = RunResult(results=[
        result("kvm-b7", "probe watch", {"watched": ["eth0"], "not_watched": {}}),
        result("kvm-b7", "probe collect", {"end": "time", "devices": {"eth0": {"count": 0}}}),
    ])  # fmt: skip
    found = summary(TRACE, run, devices, MARKER, 3)
    assert "ended at its time bound before collect" in found["errors"]["kvm-b7"]


TAP_LINK = {"ifname": "vnet7", "ifindex": 12, "mtu": 1500,
            "linkinfo": {"info_kind": "tun", "info_data": {"type": "tap"}}}  # fmt: skip


@pytest.fixture
def tap_host(monkeypatch, tmp_path):
    """The tap path on recorded commands: a watcher's state in tmp_path, every command
    recorded (and its status chosen by `status`), the frames sent recorded."""
    tap, watch = probe_module.tap, probe_module.watch
    monkeypatch.setattr(watch, "STATE_ROOT", str(tmp_path))
    (tmp_path / MARKER).mkdir()
    done = {"argv": [], "sent": [], "status": lambda argv: 0}
    up = json.dumps([{"operstate": "UP", "qdisc": "noqueue"}])

    def run(argv, **_):
        done["argv"].append(argv)
        return up if "-j" in argv else ""

    def run_status(argv, **_):
        done["argv"].append(argv)
        return done["status"](argv), "", ""

    monkeypatch.setattr(tap.core, "run", run)
    monkeypatch.setattr(tap.core, "run_status", run_status)
    monkeypatch.setattr(tap.probe_frames, "send", lambda dev, fr: done["sent"].append((dev, fr)))
    monkeypatch.setattr(tap, "_no_ipv6", lambda dev: None)
    return done


def inject_args(**extra):
    return {"action": "inject", "marker": MARKER, "count": 2, "port": "vnet7", "packet": V4,
            **extra}  # fmt: skip


def test_a_tap_is_sent_from_through_a_pair_of_the_probes_own_redirected_to_its_ingress(
    tap_host, tmp_path
):
    facts = host.Facts({"links": [TAP_LINK]})
    done = probe_module.inject(inject_args(), facts)
    sender, redirect = "vpr00112233aas", "vpr00112233aar"
    assert done["injected_at"] == {"device": sender, "namespace": None, "port": "vnet7",
                                   "via": "tc mirred ingress redirect"}  # fmt: skip
    assert tap_host["argv"][:5] == [
        ["ip", "link", "add", sender, "mtu", "1500", "type", "veth", "peer", "name", redirect,
         "mtu", "1500"],
        ["ip", "link", "set", "dev", sender, "up"], ["ip", "link", "set", "dev", redirect, "up"],
        ["ip", "-j", "link", "show", "dev", sender],  # sent from once the kernel activated it
        ["tc", "qdisc", "add", "dev", redirect, "clsact"],
    ]  # fmt: skip
    assert tap_host["argv"][5][-18:] == [  # only the VM's source MAC (V4's) is let in
        "match", "u32", "0x52540029", "0xffffffff", "at", "-8",
        "match", "u16", "0x0001", "0xffff", "at", "-4",
        "action", "mirred", "ingress", "redirect", "dev", "vnet7",
    ]  # fmt: skip
    assert [dev for dev, _ in tap_host["sent"]] == [sender] and len(tap_host["sent"][0][1]) == 2
    assert tap_host["argv"][-1] == ["ip", "link", "del", "dev", sender]  # removed after
    recorded = json.loads((tmp_path / MARKER / "helpers").read_text())
    assert recorded == {"links": [sender]}  # for the watcher, should this process be killed


def test_the_pair_is_removed_when_sending_fails_and_a_pair_left_is_said(
    tap_host, monkeypatch, tmp_path
):
    def fail(dev, frames):
        raise OSError("Message too long")

    run = probe_module.tap.core.run

    def fail_add(argv, **_):
        if argv[:3] == ["ip", "link", "add"]:
            raise host.ModuleError("ip link add: RTNETLINK answers: File exists")
        return run(argv)

    monkeypatch.setattr(probe_module.tap.probe_frames, "send", fail)
    facts = host.Facts({"links": [TAP_LINK]})
    with pytest.raises(OSError):
        probe_module.inject(inject_args(), facts)
    assert tap_host["argv"][-1] == ["ip", "link", "del", "dev", "vpr00112233aas"]
    said = probe_module.run(inject_args(), False, facts)  # not a failed host: collect runs
    assert said["failed"] is False and said["error"] == "Message too long"
    monkeypatch.setattr(probe_module.tap.core, "run", fail_add)  # a link of that name exists
    tap_host["argv"].clear()
    said = probe_module.run(inject_args(), False, facts)
    assert "File exists" in said["error"] and tap_host["argv"] == []  # not ours: left alone
    helpers = json.loads((tmp_path / MARKER / "helpers").read_text())
    assert helpers == {"links": []}  # nor removed by the watcher later
    monkeypatch.setattr(probe_module.tap.core, "run", run)
    tap_host["status"] = lambda argv: 1 if argv[2] == "del" else 0  # the delete fails, still there
    monkeypatch.setattr(probe_module.tap.probe_frames, "send", lambda dev, fr: None)
    with pytest.raises(host.ModuleError, match="could not remove the probe's link"):
        probe_module.inject(inject_args(), facts)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"info_data": {"type": "tun"}}, "a tun device"),
        ({"mtu": 1000}, "larger than the MTU of vnet7"),
        ({"no watcher": True}, "no watch of this probe runs here"),
    ],
)
def test_what_a_tap_cannot_be_sent_from_is_refused_before_any_link_is_made(
    tap_host, tmp_path, change, why
):
    link = copy.deepcopy(TAP_LINK)
    if "info_data" in change:
        link["linkinfo"]["info_data"] = change["info_data"]
    link["mtu"] = change.get("mtu", 1500)
    if "no watcher" in change:
        (tmp_path / MARKER / "result").write_text("{}")  # its watch ended
    with pytest.raises(host.ModuleError, match=why):
        probe_module.inject(inject_args(), host.Facts({"links": [link]}))
    assert tap_host["argv"] == [] and tap_host["sent"] == []


def test_the_pairs_name_is_the_probes_own_and_a_valid_interface_name():
    names = probe_module.tap.helper_names("fedcba9876543210")
    assert names == ("vprfedcba9876s", "vprfedcba9876r")
    assert all(host.ifname_problem(n) is None and len(n) <= 15 for n in names)


def test_frames_are_sent_only_once_the_kernel_activated_the_pair(monkeypatch):
    """Before the link watch runs, a new link's qdisc is `noop`: it drops what is sent."""
    states = iter([{"operstate": "DOWN", "qdisc": "noop"}, {"operstate": "UP", "qdisc": "noop"},
                   {"operstate": "UP", "qdisc": "noqueue"}])  # fmt: skip
    tap = probe_module.tap
    monkeypatch.setattr(tap.core, "run", lambda argv, **_: json.dumps([next(states)]))
    tap._wait_up("vprx", every_s=0)
    assert next(states, None) is None
    monkeypatch.setattr(tap.core, "run", lambda argv, **_: json.dumps([{"qdisc": "noop"}]))
    with pytest.raises(host.ModuleError, match="did not come up"):
        tap._wait_up("vprx", tries=3, every_s=0)
