"""An address with a scope id (`fd00::1%x } ; flush ruleset ; ...`: ipaddress reads any
text after the '%') is refused by every module that takes addresses, before any step;
and no command line splits a value into several words (issue 31)."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = Catalog()
HOST = CATALOG.host_lib()
SCOPED = "fd00::1%x } ; flush ruleset ; add table ip evil"
NETWORK = "fd00::%x } ; flush ruleset ; x/64"


def plan(module: str, facts: str, params: dict):
    loaded = CATALOG.load(module)
    recorded = HOST.Facts(json.loads((FIXTURES / "facts" / facts).read_text()))
    return HOST.plan(loaded, params, recorded)


CASES = {
    "port_group guests.ips": ("port_group", "thiskernel_vm_ports.json", {
        "name": "web", "bridge": "br-vm", "ports": ["vnet*"], "port_security": True,
        "guests": [{"port": "vnet0", "mac": "52:54:00:aa:00:00", "ips": [SCOPED]}]}),
    "ovs_port_group addresses.ips": ("ovs_port_group", "ovs_port_group_secured.json", {
        "name": "web", "bridge": "br-vm", "ports": ["vnet*"], "port_security": True,
        "addresses": [{"port": "vnet1", "mac": "52:54:00:00:00:01", "ips": [SCOPED]}]}),
    "ovs_bridge addresses": ("ovs_bridge", "ovs_teamed.json", {
        "name": "br-vm", "addresses": [SCOPED + "/64"]}),
    "ovs_bridge netflow targets": ("ovs_bridge", "ovs_teamed.json", {
        "name": "br-vm", "netflow": {"targets": [f"[{SCOPED}]:2055"]}}),
    "linux_bridge addresses": ("linux_bridge", "plain_host.json", {
        "name": "br-vm", "addresses": [SCOPED + "/64"]}),
    "vxlan_mesh local": ("vxlan_mesh", "underlay_only.json", {
        "name": "ov", "local": SCOPED, "peers": [SCOPED, "10.98.0.2"],
        "segments": [{"vni": 100, "bridge": "br-vx100", "mtu": 1400}]}),
    "traffic_shaping match dst": ("traffic_shaping", "shaping_none.json", {
        "name": "eth1", "speed": 1000,
        "classes": [{"name": "vm", "match": [{"dst": NETWORK}]}, {"name": "rest"}]}),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_scoped_address_is_refused_before_any_step(case):
    module, facts, params = CASES[case]
    with pytest.raises(HOST.ModuleError) as refused:
        plan(module, facts, params)
    message = str(refused.value)  # the value's own check, not the line writer's, nor a tool's
    assert "refusing" not in message and "failed" not in message, message


@pytest.mark.parametrize("value", [SCOPED, "fe80::1%eth0", "10.0.0.1 ", "10.0.0.1\n", "fd00::1%"])
def test_the_one_address_rule(value):
    with pytest.raises(ValueError):
        HOST.ip_value(ipaddress.ip_address, value)
    assert str(HOST.ip_value(ipaddress.ip_interface, "fd00::1/64")) == "fd00::1/64"


def test_the_nft_writer_never_splits_a_value_into_words():
    """A set element holding a blank (however it got past the checks above) is refused
    whole by the line writer; before, it was split into words nft -f would run."""
    nftsec = sys.modules["vnet_nft_portsec"]
    forged = "52:54:00:aa:00:00 } ; flush ruleset ; add table ip evil {"
    with pytest.raises(HOST.ModuleError, match="whitespace"):
        nftsec.element_steps("add", {("macs", "vnet0 . " + forged)})
    lines = [
        line for _tool, line in nftsec.element_steps("add", {("macs", "vnet0 . 52:54:00:aa:00:00")})
    ]
    assert lines == ["add element bridge vnetctl macs { vnet0 . 52:54:00:aa:00:00 }"]


def test_a_tc_filter_value_stays_one_word():
    vnet_tc = CATALOG.load("traffic_shaping").tc
    rule = {"pref": 10, "proto": "ipv6", "fields": {"dst": NETWORK}}
    with pytest.raises(HOST.ModuleError, match="refusing a tc filter"):
        vnet_tc.text(rule)
