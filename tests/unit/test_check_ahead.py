"""Check mode across a play (vnet_upcoming): a later task that needs a device an earlier
task would make is a change pending that task, never a failure, never `ok`; a task that
fails for another reason, or names no such device, keeps its own result."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
host = CATALOG.host_lib()
upcoming = sys.modules["vnet_upcoming"]


@pytest.mark.parametrize(
    ("step", "made"),
    [
        (("ip", "link add name br-vm type bridge stp_state 0"), [("bridge", "br-vm")]),
        (("ip", "link add link bond0 name bond0.100 type vlan id 100"), [("vlan", "bond0.100")]),
        (("ip", "link add bond0 type bond mode active-backup"), [("bond", "bond0")]),
        (("ovs-vsctl", "add-br br-pg"), [("Open vSwitch bridge", "br-pg")]),
        (
            ("ovs-vsctl", "--may-exist add-port br-pg int0"),
            [("port of Open vSwitch bridge br-pg", "int0")],
        ),
        (
            ("ovs-vsctl", "add-bond br-pg up0 eth1 eth2"),
            [("bond of Open vSwitch bridge br-pg", "up0")],
        ),
        (("ip", "link set dev eth1 master br-vm"), []),
        (("ovs-vsctl", "set port eth1 trunks=[10,20]"), []),
        (("file", "/etc/x"), []),
    ],
)
def test_what_a_step_makes(step, made):
    assert upcoming.creates(step) == made


def test_device_arguments_are_those_the_spec_types_ifname():
    spec = CATALOG.load("ovs_bridge").ARGUMENT_SPEC
    params = {"name": "br-pg", "ports": [{"name": "eth1"}, {"name": "vnet*", "type": "vm"}],
              "detach": ["tap0"], "fail_mode": "standalone"}  # fmt: skip
    # a port's name may be a pattern (vnet*): a str, not an ifname
    assert sorted(upcoming.device_args(spec, params)) == ["br-pg", "tap0"]


def made_by_an_earlier_task():
    seen = upcoming.Upcoming()
    facts = SimpleNamespace(link=lambda name: {"ifname": "eth1"} if name == "eth1" else None)
    seen.record(0, {"changed": True, "commands": [
        "ip link add name br-vm type bridge", "ip link set dev eth1 master br-vm",
        "ovs-vsctl add-br br-pg", "ovs-vsctl add-port br-pg eth1"]}, facts)  # fmt: skip
    return seen


def test_only_devices_the_host_lacks_are_upcoming():
    assert made_by_an_earlier_task().made == {
        "br-vm": (0, "bridge"), "br-pg": (0, "Open vSwitch bridge")}  # fmt: skip


def test_a_task_failing_on_an_upcoming_device_is_pending():
    module = CATALOG.load("port_group")
    params = {"name": "web", "bridge": "br-vm", "state": "present"}
    failed = {"changed": False, "failed": True, "resource": "port_group web",
              "msg": "port group web: bridge br-vm does not exist on this host"}  # fmt: skip
    result = made_by_an_earlier_task().pending(module, params, failed)
    assert result["changed"] and not result["failed"]
    assert result["pending"] == {"after": 0, "creates": "bridge br-vm"}
    assert result["changes"] == [{"field": "state", "before": "absent", "after": "present"}]
    assert result["resource"] == "port_group web"


def test_an_ok_on_an_upcoming_bridge_is_pending_and_a_real_plan_is_kept():
    module = CATALOG.load("ovs_port_group")
    params = {"name": "web", "bridge": "br-pg", "state": "present"}
    seen = made_by_an_earlier_task()
    ok = {"changed": False, "failed": False, "msg": "ok", "resource": "ovs_port_group web"}
    assert seen.pending(module, params, ok)["pending"]["creates"] == "Open vSwitch bridge br-pg"
    planned = {"changed": True, "failed": False, "msg": "would be created", "changes": [1]}
    assert seen.pending(module, params, planned) is planned


@pytest.mark.parametrize(
    ("params", "msg"),
    [
        (
            {"name": "web", "bridge": "br-other", "state": "present"},
            "port group web: bridge br-other does not exist on this host",
        ),
        (
            {"name": "web", "bridge": "br-vm", "state": "present"},
            "port group web: guests[0].mac 'x' is not a MAC address",
        ),
        (
            {"name": "web", "bridge": "br-vm", "state": "absent"},
            "port group web: bridge br-vm does not exist on this host",
        ),
    ],
)
def test_other_failures_stay_failures(params, msg):
    failed = {"changed": False, "failed": True, "msg": msg}
    module = CATALOG.load("port_group")
    assert made_by_an_earlier_task().pending(module, params, failed) is failed


def test_nothing_upcoming_changes_nothing():
    failed = {"changed": False, "failed": True, "msg": "bridge br-vm does not exist"}
    module = CATALOG.load("port_group")
    params = {"name": "web", "bridge": "br-vm", "state": "present"}
    assert upcoming.Upcoming().pending(module, params, failed) is failed


def test_a_device_is_named_as_a_word_of_its_own():
    names = upcoming._names
    assert names("bridge br-vm does not exist", "br-vm")
    assert names("no such device: br-vm.", "br-vm")
    assert not names("bridge br-vm2 does not exist", "br-vm")
    assert not names("bridge xbr-vm does not exist", "br-vm")
