"""The per-host micro-segmentation policy (vnet_microseg_ir): the one check both
dataplanes' compilers rely on."""

from __future__ import annotations

import sys

import pytest

from vnetctl.catalog import Catalog

Catalog().host_lib()
ir = sys.modules["vnet_microseg_ir"]

RULE = {"id": "web/0", "action": "allow", "family": "any", "proto": "tcp", "log": False,
        "ports": [443, "8000-8080", "22"], "peers": ["10.0.0.5", "fd00::/64"]}  # fmt: skip
PORT = {"port": "vnet3", "mac": "52:54:00:AA:00:01", "groups": ["web"], "ingress": [RULE],
        "egress": [], "default_ingress": "drop", "default_egress": "allow"}  # fmt: skip


def test_a_valid_policy_is_normalized():
    second = dict(PORT, port=None, mac="52:54:00:aa:00:02")
    out = ir.validate({"bridge": "br-vm", "ports": [PORT, second]})
    port = out["ports"][0]
    assert port["mac"] == "52:54:00:aa:00:01" and out["ports"][1]["port"] is None
    rule = port["ingress"][0]
    assert rule["ports"] == [443, "8000-8080", 22]
    assert rule["peers"] == ["10.0.0.5/32", "fd00::/64"] and rule["icmp_types"] == []
    assert ir.families(rule) == [4, 6] and ir.peers_of(rule, 6) == ["fd00::/64"]


@pytest.mark.parametrize(
    "change, says",
    [
        ({"ports": [99999]}, "not 1-65535"),
        ({"ports": ["80-70"]}, "not 1-65535"),
        ({"proto": "icmp", "ports": [80]}, "ports need proto tcp or udp"),
        ({"proto": "icmp", "ports": [], "icmp_types": ["echo-requst"]}, "not an icmp type"),
        ({"proto": "icmpv6", "family": "ipv4", "ports": []}, "matches nothing"),
        ({"peers": ["10.0.0.1%eth0"]}, "scope id"),
        ({"peers": ["any", "10.0.0.1"]}, "stands alone"),
        ({"action": "permit"}, "action is one of"),
        ({"id": "web 2"}, "not group/index"),
        ({"log": "yes"}, "log is true or false"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_place(change, says):
    bad = dict(PORT, ingress=[RULE, dict(RULE, **change)])
    with pytest.raises(ir.Invalid) as err:
        ir.validate({"bridge": "br-vm", "ports": [bad]})
    assert "microseg ports[0] ingress[1]" in str(err.value) and says in str(err.value)


@pytest.mark.parametrize(
    "policy, says",
    [
        ({"bridge": "br vm", "ports": []}, "not an interface name"),
        ({"bridge": "br-vm"}, "{bridge, ports}"),
        ({"bridge": "br-vm", "ports": [dict(PORT, mac="52:54:00")]}, "not a MAC"),
        ({"bridge": "br-vm", "ports": [PORT, PORT]}, "listed twice"),
        ({"bridge": "br-vm", "ports": [dict(PORT, default_ingress="deny")]}, "default_ingress"),
        ({"bridge": "br-vm", "ports": [dict(PORT, port="a;b")]}, "not an interface name"),
    ],
)
def test_a_bad_policy_is_refused(policy, says):
    with pytest.raises(ir.Invalid, match=".") as err:
        ir.validate(policy)
    assert says in str(err.value)


def test_a_rule_whose_peers_are_all_of_the_other_family_matches_nothing():
    rule = ir.validate({"bridge": "b", "ports": [dict(PORT, ingress=[dict(
        RULE, family="ipv4", peers=["fd00::1"])])]})["ports"][0]["ingress"][0]  # fmt: skip
    assert ir.families(rule) == []
    empty = dict(rule, peers=[], family="any")
    assert ir.families(empty) == []
