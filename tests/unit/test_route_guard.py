"""The management-path guard reads routes (issue 31): a task's `ip route` steps that
change the route the host takes to the controller's address are named, a removal (no
route left, or one that drops the traffic) as a cut refused without a rollback timer, a
change run under it. Planned from recorded facts: underlay_routed.json, eth0 holding
10.98.0.1/24 with the default route via 10.98.0.254; the controller at 192.0.2.10,
reached through that default (or at 10.98.0.50, on the link)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
host = CATALOG.host_lib()
safety = sys.modules["vnet_safety"]
FACTS = json.loads((Path(__file__).parent / "fixtures/facts/underlay_routed.json").read_text())
SERVER, OFF_LINK, ON_LINK = "10.98.0.1", "192.0.2.10", "10.98.0.50"


def touched(steps, client=OFF_LINK):
    guard = safety.Guard(SERVER, client_ip=client)
    return [(f["device"], f["effect"], f["cuts"]) for f in guard.classify(steps, host.Facts(FACTS))]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("route replace default via 10.98.0.253 proto static dev eth0",
         [("eth0", "route to the controller changed (via 10.98.0.254 dev eth0 -> via "
                   "10.98.0.253 dev eth0)", False)]),
        ("route del default via 10.98.0.254 dev eth0",
         [("eth0", "route to the controller removed (via 10.98.0.254 dev eth0 -> none)", True)]),
        ("route replace 192.0.2.0/24 via 10.98.0.77 dev eth0",
         [("eth0", "route to the controller changed (via 10.98.0.254 dev eth0 -> via "
                   "10.98.0.77 dev eth0)", False)]),
        ("route replace blackhole 192.0.2.0/24",
         [("eth0", "route to the controller removed (via 10.98.0.254 dev eth0 -> "
                   "blackhole)", True)]),
        ("route replace 198.51.100.0/24 via 10.98.0.77 dev eth0", []),  # not the controller's
        ("route replace default via 10.98.0.253 dev eth0 table 100", []),  # another table
        ("route replace default via 10.98.0.254 metric 100 dev eth0", []),  # a backup route
        ("route replace ::/0 via fd00::1 dev eth0", []),  # the other family
    ],
)  # fmt: skip
def test_route_steps_that_change_the_controller_s_route_are_named(line, expected):
    assert touched([("ip", line)]) == expected


def test_a_controller_on_the_link_does_not_care_for_the_default_route():
    assert touched([("ip", "route del default via 10.98.0.254 dev eth0")], client=ON_LINK) == []
    typo = [("ip", "route replace 10.98.0.0/24 proto static dev eth1")]  # the subnet elsewhere
    assert touched(typo, client=ON_LINK) == [
        ("eth0", "route to the controller changed (dev eth0 -> dev eth1)", False)
    ]


def test_no_client_address_or_no_route_steps_classify_nothing_more():
    assert touched([("ip", "route del default via 10.98.0.254 dev eth0")], client=None) == []
    assert touched([("ip", "link set dev eth1 mtu 9000")]) == []


def test_the_management_nic_into_a_bridge_moves_the_controller_s_route_along():
    module = CATALOG.load("linux_bridge")
    steps = host.plan(module, {"name": "br-mgmt", "ports": ["eth0"]}, host.Facts(FACTS))["steps"]
    assert touched(steps) == [
        ("eth0", "moved into br-mgmt", False),
        ("eth0", "route to the controller changed (via 10.98.0.254 dev eth0 -> via "
                 "10.98.0.254 dev br-mgmt)", False),
    ]  # fmt: skip


def test_a_route_task_removing_the_controller_s_route_is_refused_and_a_wrong_gateway_armed():
    module = CATALOG.load("route")
    armed = []
    guard = safety.Guard(SERVER, arm=lambda: armed.append(1), error=host.ModuleError,
                         client_ip=OFF_LINK)  # fmt: skip
    gone = host.execute(module, {"dest": "default", "state": "absent"}, False, host.Facts(FACTS),
                        runner=None, guard=guard)  # fmt: skip
    assert gone["failed"] and gone["msg"].startswith("refused before any change")
    assert "route to the controller removed" in gone["msg"] and armed == []
    ran = []
    wrong = host.execute(module, {"dest": "default", "gateway": "10.98.0.253"}, False,
                         host.Facts(FACTS), runner=lambda argv, stdin=None: ran.append(stdin),
                         guard=guard)  # fmt: skip
    assert armed == [1]
    assert ran[0] == "route replace default via 10.98.0.253 proto static dev eth0\n"
    assert wrong["management_path"][0]["effect"].startswith("route to the controller changed")


def test_the_guard_reads_routes_where_no_module_of_the_play_declared_them():
    """Route steps from a module that does not declare the source (a future one)."""

    def runner(argv, stdin=None):
        assert "route" in argv, argv  # links and addresses are recorded below
        return json.dumps(FACTS["routes"])

    recorded = {"links": FACTS["links"], "addrs": FACTS["addrs"]}
    facts = host.Facts(recorded, runner=runner, modules=[CATALOG.load("link")])
    guard = safety.Guard(SERVER, client_ip=OFF_LINK)
    found = guard.classify([("ip", "route del default via 10.98.0.254 dev eth0")], facts)
    assert [f["cuts"] for f in found] == [True]


def test_a_route_line_the_guard_cannot_read_is_left_out_not_a_crash():
    assert touched([("ip", "route replace 192.0.2.0/24 via 10.98.0.77 metric many dev eth0"),
                    ("ip", "route replace not-a-network dev eth0")]) == []  # fmt: skip
