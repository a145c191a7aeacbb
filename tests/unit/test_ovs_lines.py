"""OVS command lines: the one quoted ovsdb value, and OpenFlow bundles per bridge."""

from __future__ import annotations

import pytest

from vnetctl.catalog import Catalog

host = Catalog().host_lib()
ovs = host.vnet_ovs


def test_flow_export_targets_are_quoted_in_the_argv_and_plain_in_the_plan():
    lines = [host.line("set", "IPFIX", "br0", "targets=10.0.0.9:4739,10.0.0.8:4739")]
    argv = ovs.transaction(lines)
    assert argv[-1] == 'targets=["10.0.0.9:4739","10.0.0.8:4739"]'
    assert argv[:2] == ["ovs-vsctl", "--timeout=10"] and argv[2] == "--"


def test_other_words_pass_as_written():
    argv = ovs.transaction([host.line("set", "port", "p1", "trunks=[10,20]", "tag=5")])
    assert argv[3:] == ["set", "port", "p1", "trunks=[10,20]", "tag=5"]


def test_openflow_lines_become_one_atomic_bundle_per_bridge_in_order():
    lines = [
        host.line("br1", "delete", "cookie=0x1/0xff,in_port=p1"),
        host.line("br0", "add", "cookie=0x1,priority=100,in_port=p2,actions=drop"),
        host.line("br1", "add", "cookie=0x1,priority=100,in_port=p1,actions=drop"),
    ]
    assert ovs.ofctl_batches(lines) == [
        (["ovs-ofctl", "--bundle", "add-flows", "br1", "-"],
         "delete cookie=0x1/0xff,in_port=p1\n"
         "add cookie=0x1,priority=100,in_port=p1,actions=drop\n"),
        (["ovs-ofctl", "--bundle", "add-flows", "br0", "-"],
         "add cookie=0x1,priority=100,in_port=p2,actions=drop\n"),
    ]  # fmt: skip


def test_the_engine_runs_openflow_steps_as_bundles():
    calls = []
    steps = [
        host.step("ovs-vsctl", "add-port", "br0", "p1"),
        host.step("ovs-ofctl", "br0", "add", "priority=1,in_port=p1,actions=drop"),
    ]
    host.apply_steps(steps, runner=lambda argv, stdin=None: calls.append((argv, stdin)))
    assert calls == [
        (ovs.transaction(["add-port br0 p1"]), None),
        (["ovs-ofctl", "--bundle", "add-flows", "br0", "-"],
         "add priority=1,in_port=p1,actions=drop\n"),
    ]  # fmt: skip


def test_a_bridge_name_that_is_not_an_interface_name_runs_nothing():
    with pytest.raises(host.ModuleError, match="bridge name"):
        ovs.ofctl_batches(["-x add priority=1,actions=drop"])


def test_vlan_probes_are_named_apart_from_vni_probes_and_fit_the_kernel():
    probe = Catalog().load("overlay_probe")
    vlan, vni = {"vlan": 4094, "vni": None}, {"vni": 4094, "vlan": None}
    assert probe.outside_name(vlan) != probe.outside_name(vni)
    assert probe.namespace(vlan) == "vnetctl-probe-vlan4094"
    assert len(probe.outside_name(vlan)) <= 15 and len("vnq" + probe._key(vlan)) <= 15
