"""Planned changes -> drift items and fleet consistency, with no module knowledge."""

from __future__ import annotations

from vnetctl.catalog import Catalog
from vnetctl.drift.classify import classify_run, task_items
from vnetctl.drift.report import HostState, Kind
from vnetctl.runner.results import RunResult, Status, TaskResult

FLATTEN = Catalog().host_lib().flatten


def result(host="h1", status=Status.CHANGED, changes=(), before=None, after=None, **kw):
    diff = {"before": before, "after": after} if before is not None else None
    return TaskResult(
        host=host,
        play="site",
        index=0,
        task="VM bridge",
        module="linux_bridge",
        status=status,
        changes=[dict(field=f, before=b, after=a) for f, b, a in changes],
        diff=diff,
        resource="bridge br-vm",
        **kw,
    )


def kinds(items):
    return [(i.kind, i.field, i.declared, i.actual) for i in items]


def test_a_changed_scalar_is_different_with_declared_and_actual():
    items = task_items(result(changes=[("mtu", 1500, 9000)]))
    assert kinds(items) == [(Kind.DIFFERENT, "mtu", 9000, 1500)]
    assert items[0].resource == "bridge br-vm" and items[0].host == "h1"


def test_list_fields_split_into_extra_and_missing_members():
    items = task_items(result(changes=[("ports", ["eth1", "eth2"], ["eth1", "veth9"])]))
    assert kinds(items) == [
        (Kind.EXTRA, "ports", None, "eth2"),
        (Kind.MISSING, "ports", "veth9", None),
    ]


def test_an_absent_resource_is_one_missing_item_not_one_per_field():
    changes = [("mtu", None, 9000), ("ports", None, ["eth1"]), ("state", "absent", "present")]
    assert kinds(task_items(result(changes=changes))) == [(Kind.MISSING, None, "present", "absent")]


def test_an_absent_nested_object_is_missing_at_its_path():
    changes = [
        ("segments.200.bridge", None, "br-vx200"),
        ("segments.200.peers", None, ["10.0.0.2"]),
        ("segments.200.state", None, "present"),
        ("segments.100.peers", ["10.0.0.2", "10.0.0.9"], ["10.0.0.2", "10.0.0.3"]),
    ]
    assert kinds(task_items(result(changes=changes))) == [
        (Kind.MISSING, "segments.200", "present", "absent"),
        (Kind.EXTRA, "segments.100.peers", None, "10.0.0.9"),
        (Kind.MISSING, "segments.100.peers", "10.0.0.3", None),
    ]


def test_a_resource_declared_absent_but_present_is_different_state():
    items = task_items(result(changes=[("state", "present", "absent")]))
    assert kinds(items) == [(Kind.DIFFERENT, "state", "absent", "present")]


def test_hosts_are_in_sync_drifted_failed_or_unreachable_never_silently_clean():
    run = RunResult(
        results=[
            result("h1", Status.OK, before={"mtu": 9000}, after={"mtu": 9000}),
            result("h2", Status.CHANGED, [("mtu", 1500, 9000)], {"mtu": 1500}, {"mtu": 9000}),
            result("h3", Status.FAILED, msg="ip: boom"),
        ],
        unreachable={"h4": "connection refused"},
        hosts=["h1", "h2", "h3", "h4"],
    )
    hosts, _ = classify_run(run, FLATTEN)
    states = {h.host: (h.state, h.resources, len(h.items)) for h in hosts}
    assert states == {
        "h1": (HostState.IN_SYNC, 1, 0),
        "h2": (HostState.DRIFTED, 1, 1),
        "h3": (HostState.FAILED, 0, 0),
        "h4": (HostState.UNREACHABLE, 0, 0),
    }
    assert "ip: boom" in hosts[2].reason and hosts[3].reason == "connection refused"


def test_consistency_names_each_host_value_of_a_field_declared_alike():
    declared = {"mtu": 9000, "ports": ["eth1"], "vtep": None}
    run = RunResult(
        results=[
            result("h1", Status.OK, before={"mtu": 9000, "ports": ["eth1"]}, after=declared),
            result(
                "h2",
                Status.CHANGED,
                [("mtu", 1500, 9000)],
                before={"mtu": 1500, "ports": ["eth1"]},
                after=declared,
            ),
            result("h3", Status.OK, before={"mtu": 9000, "ports": ["eth1"]}, after=declared),
        ],
        hosts=["h1", "h2", "h3"],
    )
    _, found = classify_run(run, FLATTEN)
    assert [(c.resource, c.field, c.declared, c.values) for c in found] == [
        ("bridge br-vm", "mtu", 9000, {"h1": 9000, "h2": 1500, "h3": 9000})
    ]


def test_fields_declared_per_host_are_not_consistency_items():
    run = RunResult(
        results=[
            result("h1", Status.OK, before={"local": "10.0.0.1"}, after={"local": "10.0.0.1"}),
            result("h2", Status.OK, before={"local": "10.0.0.2"}, after={"local": "10.0.0.2"}),
        ],
        hosts=["h1", "h2"],
    )
    assert classify_run(run, FLATTEN)[1] == []
