"""Port names as `ovs-ofctl --names dump-flows` prints them and as vnetctl's flows name
them. OVS quotes every name but a letter followed by letters and digits (namemap_put_name,
lib/namemap.c), as a JSON string; a batch line holds no quote, and ovs-ofctl reads a
bare word as a reserved port, a number, or else a port's name (ofputil_port_from_string,
lib/ofp-port.c). Before: the gate of a bridge with a VXLAN mesh tunnel port never
converged ('"vx300-274d"' is no interface) and its rollback held a quote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
LIB = CATALOG.host_lib()
ovs, portsec = sys.modules["vnet_ovs_config"], sys.modules["vnet_ovs_portsec"]
FACTS = Path(__file__).parent / "fixtures" / "facts"

# recorded on a lab host (OVS 3.1.0, userspace datapath): br-ovs300 of the mesh playbook,
# its tunnel port vx300-274d, group web guarding oq1p (tests/integration/
# test_ovs_quoted_port_lab.py), and ports of odd names added by hand on another bridge
RECORDED = """\
 cookie=0x766e000067617465, priority=1 actions=drop
 cookie=0x766e000067617465, priority=2,in_port="vx300-274d" actions=NORMAL
 cookie=0x766e000067617465, priority=2,in_port=LOCAL actions=NORMAL
 cookie=0x766e000067617465, priority=2,in_port=oq1p actions=NORMAL
 cookie=0x766e385100000000, priority=110,in_port=oq1p,dl_src=52:54:00:79:00:01 actions=NORMAL
 cookie=0x766e385100000000, priority=121,icmp6,in_port=oq1p,dl_src=52:54:00:79:00:01,\
icmp_type=135,nd_sll=00:00:00:00:00:00 actions=NORMAL
 cookie=0x1, priority=5,in_port="eth1.100" actions=NORMAL
 cookie=0x1, priority=5,in_port="q(1)" actions=NORMAL
 cookie=0x1, priority=5,in_port="z\\"z" actions=NORMAL
 cookie=0x1, priority=5,in_port=123 actions=NORMAL
"""


def test_dumped_port_names_are_read_unquoted():
    flows = ovs.parse_flows(RECORDED)
    assert portsec.gate_of(flows) == {"closed": True, "allowed": ["LOCAL", "oq1p", "vx300-274d"]}
    assert [f["in_port"] for f in flows[6:]] == ["eth1.100", "q(1)", 'z"z', "123"]
    icmp6 = flows[5]
    assert icmp6["protocols"] == ["icmp6"] and icmp6["nd_sll"] == "00:00:00:00:00:00"


def with_tunnel():
    """ovs_port_group_secured.json with the tunnel port vx300-274d (OpenFlow port 7) on
    br-vm, let through the gate as the recorded dump says."""
    data = json.loads((FACTS / "ovs_port_group_secured.json").read_text())
    cfg = data["ovs_config"]
    cfg["bridges"]["br-vm"]["ports"].append("vx300-274d")
    cfg["ports"]["vx300-274d"] = dict(cfg["ports"]["hostvm"], tag=None, interfaces=["vx300-274d"])
    cfg["interfaces"]["vx300-274d"] = {"external_ids": {}, "mtu_request": None, "type": "vxlan",
                                       "ofport": 7}  # fmt: skip
    data["ovs_flows"]["br-vm"] += ovs.parse_flows(RECORDED.splitlines()[1])
    return data


def plan(params, data):
    planned = LIB.plan(CATALOG.load("ovs_port_group"), params, LIB.Facts(data))
    return [c["field"] for c in planned["changes"]], [" ".join(s) for s in planned["steps"]]


WEB = {"name": "web", "bridge": "br-vm", "ports": ["vnet*"], "vlan": 20, "port_security": True,
       "addresses": [{"port": "vnet1", "mac": "52:54:00:00:00:01"}]}  # fmt: skip


def test_the_gate_beside_a_quoted_tunnel_port_plans_nothing():
    assert plan(WEB, with_tunnel()) == ([], [])


def test_the_gate_opened_names_the_tunnel_port_bare():
    """What a rollback of the gate's closing runs: the tunnel's entry deleted, no quote."""
    changes, steps = plan(dict(WEB, state="absent"), with_tunnel())
    assert "gate.allowed" in changes
    gate = "ovs-ofctl br-vm delete cookie=0x766e000067617465/0xffffffffffffffff,in_port="
    assert gate + "vx300-274d" in steps and not [s for s in steps if '"' in s]


@pytest.mark.parametrize(
    ("port", "written"),
    [
        ("vx300-274d", "vx300-274d"),  # quoted by dump-flows, read back bare (lab: accepted)
        ("eth1.100", "eth1.100"),
        ("a_b", "a_b"),
        ("LOCAL", "LOCAL"),  # the bridge's own port, as interfaces() names it
        ("12", "12"),  # a port gone: dump-flows gives its number
        ("local", "5"),  # bare, ovs-ofctl reads the reserved port LOCAL (lab: it did)
        ("Normal", "6"),
        ("123", "8"),  # bare, a port number (lab: the rule went to port 123)
        ('z"z', "9"),  # a quote: no batch line holds one
        ("p,q", "10"),  # a comma ends the word
        ("9ab", "11"),
    ],
)
def test_a_port_is_written_bare_where_ovs_ofctl_reads_it_back_else_by_number(port, written):
    numbers = {"local": 5, "Normal": 6, "123": 8, 'z"z': 9, "p,q": 10, "9ab": 11}
    cfg = {"interfaces": {name: {"ofport": n} for name, n in numbers.items()}}
    assert ovs.in_port(port, cfg) == written


def test_a_port_ovs_ofctl_cannot_name_and_without_a_number_is_refused():
    cfg = {"interfaces": {"x:y": {"ofport": -1}}}  # OVS could not open it
    with pytest.raises(LIB.ModuleError, match="no OpenFlow port number"):
        ovs.in_port("x:y", cfg)
