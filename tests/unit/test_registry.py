"""The registry of command writers (vnet_registry): a step's tool and form are checked
when planning, so check mode never promises a step the real run cannot apply; each
writer applies its batch its own way (documents whole); and the management-path guard
names the steps of every tool through it."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from test_host_safety import Recorder

from vnetctl.catalog import Catalog

host = Catalog().host_lib()
registry = sys.modules["vnet_registry"]
safety = sys.modules["vnet_safety"]


def one_step_module(step):
    return SimpleNamespace(
        read=lambda params, facts: {"value": 0},
        desired=lambda params, current, facts: {"value": 1},
        steps=lambda current, desired, facts: [step],
    )


FACTS = SimpleNamespace(refresh=lambda: None)


@pytest.mark.parametrize(
    ("step", "why"),
    [
        (("sysctl", "-w net.ipv4.ip_forward=1"), "one KEY=VALUE word"),
        (("sysctl", "net.ipv4.ip_forward=1"), "its '/' form"),
        (("sysctl", "-net/ipv4/ip_forward=1"), "one KEY=VALUE word"),
        (("ip", "-n other link del eth0"), "it starts with '-n'"),
        (("tc", "-force qdisc del dev eth0 root"), "it starts with '-force'"),
        (("ovs-vsctl", "--db=unix:/x del-br br0"), "a global option"),
        (("ovs-vsctl", "-- del-br br0"), "a global option"),
        (("ovs-ofctl", "br0 add-flow in_port=1,actions=drop"), "BRIDGE add|delete"),
        (("file", "write etc/x"), "not an absolute path"),
        (("file", "write /etc/../x"), "not an absolute path"),
        (("sh", "id"), "no writer for tool 'sh'"),
    ],
)
def test_check_mode_refuses_a_step_the_real_run_could_not_apply(step, why):
    """Before the registry a sysctl step `-w KEY=1` was promised by check mode and failed
    the real run (`sysctl -p -` reads KEY=VALUE lines): now both fail, the same way,
    before any change."""
    recorder = Recorder()
    checked = host.execute(one_step_module(step), {}, True, FACTS, runner=recorder)
    applied = host.execute(one_step_module(step), {}, False, FACTS, runner=recorder)
    assert checked["failed"] and why in checked["msg"], checked
    assert applied["failed"] and applied["msg"] == checked["msg"]
    assert recorder.calls == []


def test_every_tool_is_one_writer_with_its_form_its_batch_and_its_effect():
    assert sorted(registry.WRITERS) == sorted(
        ["ip", "bridge", "tc", "sysctl", "nft", "ovs-vsctl", "ovs-ofctl", "file"]
    )
    for name, writer in registry.WRITERS.items():
        assert name in registry.__doc__ and callable(writer.form) and callable(writer.run)
        assert writer.effect is not None or name == "file"  # a document touches no device
    assert set(registry.CUTS_NAMED) <= set(safety.CUTS)


def test_sysctl_steps_are_written_in_the_form_sysctl_p_reads():
    assert host.sysctl_step("net.ipv4.ip_forward", 1) == ("sysctl", "net/ipv4/ip_forward=1")
    dotted_device = "net/ipv4/conf/eth1.100/rp_filter"
    assert host.sysctl_step(dotted_device, 2) == ("sysctl", dotted_device + "=2")
    for key in ("../x", "kernel", "net/ipv4//ip_forward"):
        with pytest.raises(host.ModuleError, match="refusing sysctl"):
            host.sysctl_step(key, 1)
    recorder = Recorder()
    host.apply_steps([host.sysctl_step("net.ipv4.ip_forward", 0)], recorder)
    assert recorder.calls == [(["sysctl", "-q", "-p", "-"], "net/ipv4/ip_forward=0\n")]


def test_documents_are_written_whole_and_removed_together(tmp_path):
    first, second = tmp_path / "a" / "one.xml", tmp_path / "two.conf"
    second.write_text("old\n")
    steps = [host.document_step(str(first), "<network/>\n"), host.document_step(str(second), None)]
    assert [" ".join(s) for s in steps] == [f"file write {first}", f"file remove {second}"]
    host.apply_steps(steps)
    assert first.read_text() == "<network/>\n" and not second.exists()
    with pytest.raises(host.ModuleError, match="carries no document"):
        host.apply_steps([("file", f"write {first}")])
    assert first.read_text() == "<network/>\n"


def test_a_document_that_cannot_be_written_leaves_every_file_as_it_was(tmp_path):
    kept = tmp_path / "kept.conf"
    kept.write_text("before\n")
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")  # a file where a directory is needed: staging fails
    steps = [host.document_step(str(kept), "after\n"),
             host.document_step(str(blocked / "x.conf"), "x\n")]  # fmt: skip
    with pytest.raises(host.ModuleError, match="cannot write"):
        host.apply_steps(steps)
    assert kept.read_text() == "before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.conf", "not-a-dir"]


FACTS_ETH0 = {
    "links": [{"ifname": "eth0", "mtu": 1500, "flags": ["UP"]},
              {"ifname": "eth1", "mtu": 1500, "flags": ["UP"]}],
    "addrs": [{"ifname": "eth0", "addr_info": [
        {"family": "inet", "local": "10.98.0.1", "prefixlen": 24, "scope": "global"}]}],
}  # fmt: skip


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (("tc", "qdisc add dev eth0 root handle 1: htb default 2"),
         [("eth0", "traffic control changed", False)]),
        (("tc", "qdisc add dev eth1 root handle 1: htb default 2"), []),
        (("sysctl", "net/ipv4/conf/eth0/arp_ignore=8"), [("eth0", "setting changed", False)]),
        (("sysctl", "net/ipv4/conf/all/arp_ignore=8"), [("all", "setting changed", False)]),
        (("sysctl", "net/ipv6/conf/eth0/disable_ipv6=1"), []),  # an IPv4 management address
        (("sysctl", "net/ipv4/ip_forward=0"), []),
        (("ovs-vsctl", "del-bond-iface bond0 eth0"), [("eth0", "released from its master",
                                                        False)]),
        (("file", "write /etc/libvirt/qemu/networks/x.xml"), []),
    ],
)  # fmt: skip
def test_the_guard_names_the_steps_of_every_tool(step, expected):
    """Before the registry only ip, bridge, nft and the OVS tools were read: a tc policy
    or an ARP setting on the management NIC ran without the rollback timer."""
    facts = host.Facts(FACTS_ETH0)
    found = safety.classify([step], safety.management_path(facts, "10.98.0.1"), facts)
    assert [(f["device"], f["effect"], f["cuts"]) for f in found] == expected


def test_disabling_ipv6_under_an_ipv6_management_address_cuts():
    facts = host.Facts({
        "links": FACTS_ETH0["links"],
        "addrs": [{"ifname": "eth0", "addr_info": [
            {"family": "inet6", "local": "fd00::1", "prefixlen": 64, "scope": "global"}]}],
    })  # fmt: skip
    mgmt = safety.management_path(facts, "fd00::1")
    found = safety.classify([("sysctl", "net/ipv6/conf/eth0/disable_ipv6=1")], mgmt, facts)
    assert [(f["device"], f["effect"], f["cuts"]) for f in found] == [
        ("eth0", "address removed", True)
    ]
