"""vnetctl trace's walk on recorded facts (two lab hosts, a VXLAN mesh, a VM-like veth on
each: tests/unit/fixtures/trace/), with the lookups' answers given: the healthy path
both ways, each broken layer named at its hop, and every document valid against
docs/schemas/trace.schema.json."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.trace.endpoints import resolve
from vnetctl.trace.hostview import HostView
from vnetctl.trace.path import SCHEMA, packet, plan_lookups, walk

ROOT = Path(__file__).parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "trace"
TRACE_SCHEMA = json.loads((ROOT / "docs" / "schemas" / "trace.schema.json").read_text())
CATALOG = Catalog()
VTEPS = {"h1": "10.200.0.11", "h2": "10.200.0.12"}
MACS = {"h1": "52:54:00:aa:00:01", "h2": "52:54:00:aa:00:02"}


def views(edit=None) -> dict[str, HostView]:
    out = {}
    for host in ("h1", "h2"):
        data = json.loads((FIXTURES / f"vxlan_{host}.json").read_text())
        if edit:
            edit(host, data)
        out[host] = HostView(host, data, CATALOG.facts(data))
    return out


def answer(view: HostView, src_host: str, dst_host: str) -> None:
    """The lookups as the lab's kernel answered them: the destination MAC learned on
    the VXLAN port (source host) and on the guest's port (destination host)."""
    dst_mac = MACS[dst_host]
    port = "vxlan100" if view.name == src_host else f"vm{dst_host[-1]}p"
    view.lookups[("fdb", "br-vx100")] = {"answer": [{"mac": dst_mac, "ifname": port}]}
    remote = VTEPS[dst_host]
    view.lookups[("route", remote)] = {
        "answer": [{"dst": remote, "dev": "eth0", "prefsrc": VTEPS[view.name]}]
    }


def document(src="vm1", dst="vm2", edit=None, size=None, before_walk=None) -> dict:
    hosts = views(edit)
    source, target = resolve(src, hosts), resolve(dst, hosts)
    pkt = packet(source, target, {"size": size}, hosts[source.host].mtu(source.port))
    for view in hosts.values():
        answer(view, source.host, target.host)
    if before_walk:
        before_walk(hosts)
    hops = walk(hosts, source, target, pkt)
    dropped = next((i for i, h in enumerate(hops) if h["decision"] == "drop"), None)
    doc = {"schema": SCHEMA, "source": source.to_dict(), "destination": target.to_dict(),
           "packet": pkt.to_dict(), "verdict": "dropped" if dropped is not None else
           "delivered", "dropped_at": dropped, "hops": hops, "probe": None}  # fmt: skip
    jsonschema.validate(doc, TRACE_SCHEMA)
    return doc


def layers(doc):
    return [(h["host"], h["layer"], h["device"], h["decision"]) for h in doc["hops"]]


@pytest.mark.parametrize(("src", "dst"), [("vm1", "vm2"), ("h2:vm2", "52:54:00:aa:00:01")])
def test_the_healthy_path_is_delivered_both_ways_hop_by_hop(src, dst):
    doc = document(src, dst)
    a, b = doc["source"]["host"], doc["destination"]["host"]
    assert doc["verdict"] == "delivered" and doc["dropped_at"] is None
    assert layers(doc) == [
        (a, "port", doc["source"]["port"], "pass"),
        (a, "bridge", "br-vx100", "forward"),
        (a, "vxlan", "vxlan100", "encapsulate"),
        (a, "underlay", "eth0", "forward"),
        (a, "mtu", "eth0", "pass"),
        (b, "vxlan", "vxlan100", "decapsulate"),
        (b, "bridge", "br-vx100", "forward"),
        (b, "port", doc["destination"]["port"], "deliver"),
    ]
    assert doc["hops"][2]["detail"]["remote"] == VTEPS[b]
    assert doc["hops"][4]["detail"]["largest"] == 1450  # vxlan100's MTU, eth0 1500 - 50


def test_endpoints_by_port_mac_and_address_are_the_same_port():
    hosts = views()
    by_name, by_mac = resolve("vm1", hosts), resolve("52:54:00:AA:00:01", hosts)
    by_ip = resolve("192.168.100.1", hosts)
    assert (by_name.host, by_name.port) == (by_mac.host, by_mac.port) == ("h1", "vm1p")
    assert (by_ip.host, by_ip.port, by_ip.mac) == ("h1", "vm1p", MACS["h1"])
    for bad in ("vm1;reboot", "no-such-port", "h1:vm2"):
        with pytest.raises(InputError):
            resolve(bad, hosts)


def test_a_missing_vxlan_peer_is_named_at_the_vxlan_hop():
    def no_peer(host, data):
        if host == "h1":
            data["fdb"] = [e for e in data["fdb"] if e["ifname"] != "vxlan100"]

    doc = document(edit=no_peer)
    hop = doc["hops"][doc["dropped_at"]]
    assert (hop["host"], hop["layer"], hop["device"]) == ("h1", "vxlan", "vxlan100")
    assert "no fdb entry on vxlan100 to VTEP 10.200.0.12" in hop["reason"]


def test_an_underlay_mtu_below_the_overlays_need_is_named_with_the_largest_that_passes():
    def small_underlay(host, data):
        for link in data["links"]:
            if host == "h1" and link["ifname"] == "eth0":
                link["mtu"] = 1400

    doc = document(edit=small_underlay)
    hop = doc["hops"][doc["dropped_at"]]
    assert (hop["host"], hop["layer"], hop["device"]) == ("h1", "mtu", "eth0")
    assert hop["detail"]["largest"] == 1350 and hop["detail"]["setting"] == "mtu"
    assert document(edit=small_underlay, size=1350)["verdict"] == "delivered"


def with_guard(port, mac):
    """port_group's nftables table guarding `port` for `mac` (as nft -j lists its sets)."""

    def edit(host, data):
        if host != "h1":
            return
        sets = {"guarded": [port], "macs": [{"concat": [port, mac]}],
                "lla": [{"concat": [port, int(mac.replace(":", ""), 16)]}]}  # fmt: skip
        data["nft_bridge"] = {"nftables": [
            {"set": {"family": "bridge", "table": "vnetctl", "name": n, "elem": e}}
            for n, e in sets.items()]}  # fmt: skip

    return edit


def test_forged_transmits_are_named_with_the_nftables_rule():
    doc = document(edit=with_guard("vm1p", "52:54:00:66:66:66"))
    hop = doc["hops"][doc["dropped_at"]]
    assert (hop["host"], hop["layer"], hop["device"]) == ("h1", "security", "vm1p")
    assert hop["detail"]["rule"] == "ether-source"
    assert document(edit=with_guard("vm1p", MACS["h1"]))["verdict"] == "delivered"


def test_a_port_outside_the_frames_vlan_drops_it_on_a_filtering_bridge():
    def filtering(host, data):  # constructed: the lab's kernel has no VLAN filtering
        for link in data["links"]:
            if link["ifname"] == "br-vx100":
                link["linkinfo"]["info_data"]["vlan_filtering"] = 1
        pvid = 20 if host == "h1" else 10
        access = ["PVID", "Egress Untagged"]
        data["bridge_vlans"] = [
            {"ifname": f"vm{host[-1]}p", "vlans": [{"vlan": pvid, "flags": access}]},
            {"ifname": "vxlan100", "vlans": [{"vlan": 10, "flags": access}]},
        ]

    doc = document(edit=filtering)
    hop = doc["hops"][doc["dropped_at"]]
    assert (hop["host"], hop["layer"], hop["device"]) == ("h1", "vlan", "vxlan100")
    assert hop["detail"]["vlan"] == 20 and "not admitted" in hop["reason"]


def test_a_tc_class_whose_drops_rise_while_traced_is_at_its_limit():
    def shaped(host, data):
        if host == "h2":
            data["tc"]["qdiscs"]["vm2p"] = [
                {
                    "kind": "htb",
                    "handle": "1:",
                    "parent": None,
                    "options": {"default": "0x10"},
                    "root": True,
                }
            ]
            data["tc"]["classes"]["vm2p"] = {"1:10": {"rate": 1000, "ceil": 1000,
                                                      "stats": {"drops": 5}}}  # fmt: skip

    def rising(hosts):
        later = {"1:10": {"rate": 1000, "ceil": 1000, "stats": {"drops": 42, "overlimits": 9}}}
        hosts["h2"].lookups[("tc", "vm2p")] = {"answer": later}

    doc = document(edit=shaped, before_walk=rising)
    hop = doc["hops"][doc["dropped_at"]]
    assert (hop["host"], hop["layer"], hop["device"]) == ("h2", "tc", "vm2p")
    assert hop["detail"]["class"] == "1:10" and hop["detail"]["drops_rising"] == 37
    assert document(edit=shaped)["verdict"] == "delivered"  # counters not rising: passes


def test_lookups_ask_only_for_what_the_frame_needs():
    hosts = views()
    src, dst = resolve("vm1", hosts), resolve("vm2", hosts)
    pkt = packet(src, dst, {}, 1450)
    plans = plan_lookups(hosts, src, dst, pkt)
    assert plans["h1"] == [{"kind": "fdb", "bridge": "br-vx100", "mac": MACS["h2"]},
                           {"kind": "route", "address": "10.200.0.12"}]  # fmt: skip
    assert plans["h2"] == [{"kind": "fdb", "bridge": "br-vx100", "mac": MACS["h2"]}]


def test_the_host_module_refuses_what_is_not_a_mac_or_an_address_before_running_anything():
    module = CATALOG.load("path_trace")
    ran = []

    def runner(argv, stdin, timeout):
        ran.append(argv)
        return 0, "[]", ""

    bad = [{"kind": "fdb", "bridge": "br0", "mac": "52:54:00:aa:00:01 br x"},
           {"kind": "route", "address": "10.0.0.1; reboot"},
           {"kind": "ofproto", "bridge": "br0", "device": "p1", "src_mac": "x",
            "dst_mac": "52:54:00:aa:00:01"}]  # fmt: skip
    found = module.run({"lookups": bad}, True, None, runner=runner)["lookups"]
    assert ran == [] and all("error" in f for f in found)
    good = [{"kind": "fdb", "bridge": "br0", "mac": "52:54:00:aa:00:01", "vlan": 10}]
    module.run({"lookups": good}, True, None, runner=runner)
    assert ran == [["bridge", "-j", "fdb", "get", "52:54:00:aa:00:01", "br", "br0", "vlan", "10"]]


def test_ofproto_trace_drop_by_vnetctls_port_security_rule_is_a_security_hop():
    from vnetctl.trace.ovs_layers import flow_hop

    view = views()["h1"]
    view.lookups[("ofproto", "br0")] = {"answer": (
        "Flow: in_port=3,dl_src=52:54:00:66:66:66\n\nbridge(\"br0\")\n-------------\n"
        " 0. in_port=3, priority 40, cookie 0x766e5f4300000000\n    drop\n\n"
        "Final flow: unchanged\nDatapath actions: drop\n")}  # fmt: skip
    hop = flow_hop(view, "br0", "vm2p")
    assert (hop["layer"], hop["decision"]) == ("security", "drop")
    assert hop["detail"]["rule"]["prio"] == "40"
    assert copy.deepcopy(hop)["detail"]["datapath_actions"] == "drop"


NORMAL_BUT_NOTHING = (
    'Flow: in_port=3,dl_src=52:54:00:00:00:01\n\nbridge("br-vm")\n---------------\n'
    " 0. in_port=3,dl_src=52:54:00:00:00:01, priority 110, cookie 0x766e385100000000\n"
    "    NORMAL\n     -> forwarding to learned port\n\nFinal flow: unchanged\n"
    "Datapath actions: drop\n"
)


def test_a_drop_after_a_normal_rule_is_the_bond_with_no_member_not_port_security():
    from vnetctl.trace.endpoints import Endpoint
    from vnetctl.trace.layers import Packet
    from vnetctl.trace.ovs_layers import flow_hop, source_side

    def with_bond(host, data):
        data["ovs"]["bridges"] = {"br-vm": ["web1", "uplink"]}
        data["ovs"]["ports"] = {"web1": ["web1"], "uplink": ["eth1", "eth2"]}
        data["ovs_bonds"] = {"uplink": {"lacp_status": "negotiated", "members": {
            "eth1": {"enabled": False}, "eth2": {"enabled": False}}}}  # fmt: skip

    view = views(with_bond)["h1"]
    view.lookups[("ofproto", "br-vm")] = {"answer": NORMAL_BUT_NOTHING}
    flow = flow_hop(view, "br-vm", None)
    assert (flow["layer"], flow["decision"], flow["detail"]["by_rule"]) == (
        "ovs-flow",
        "drop",
        False,
    )
    src = Endpoint("vm", "h1", "web1", "br-vm", "ovs", mac=MACS["h1"])
    pkt = Packet(None, None, None, 1500, MACS["h1"], MACS["h2"], None, None)
    hops = source_side(view, src, pkt, None, same=False)
    assert [(h["layer"], h["device"], h["decision"]) for h in hops] == [("bond", "uplink", "drop")]
    assert "no member enabled (eth1, eth2 down)" in hops[0]["reason"]


def test_probe_and_html_options_are_refused_before_any_host(capsys, tmp_path):
    from vnetctl.cli.main import main

    for bad in (["--probe", "--probe-count", "21"], ["--probe", "--probe-timeout", "0"]):
        assert main(["trace", "vm1", "vm2", "-i", "inventory/lab.yml", *bad]) == 1
        assert "trace: error" in capsys.readouterr().err
    nowhere = tmp_path / "no-such-dir" / "path.html"
    assert main(["trace", "vm1", "vm2", "-i", "inventory/lab.yml", "--html", str(nowhere)]) == 1
    assert "--html" in capsys.readouterr().err


def test_the_class_a_frame_gets_is_its_vlans_filter_else_the_default():
    from vnetctl.trace.layers import Packet, classify

    tc = {"qdiscs": [{"kind": "htb", "handle": "1:", "root": True,
                      "options": {"default": "0x30"}}],
          "filters": [{"pref": 2, "proto": "all", "flowid": "1:40",
                       "fields": {"protocol": "tcp", "dport": 443}},
                      {"pref": 1, "proto": "802.1q", "vlan": 10, "flowid": "1:10"}]}  # fmt: skip
    frame = Packet("tcp", 443, 10, 1500, None, None, "10.0.0.1", "10.0.0.2")
    assert classify(tc, frame) == ("1:10", "filter pref 1")
    assert classify(tc, Packet("tcp", 443, 20, 1500, None, None, None, None))[0] == "1:40"
    assert classify(tc, Packet("udp", 53, 20, 1500, None, None, None, None)) == (
        "1:30",
        "the default class",
    )


def with_libvirt(host, data):
    """The facts as a host with libvirt's status files (fixtures/trace/libvirt_HOST:
    web1 and dup on h1, dup on h2) reads them."""
    from tests.unit.test_hostnet import libvirt_nics

    data["libvirt_nics"] = libvirt_nics(FIXTURES / f"libvirt_{host}")


@pytest.mark.parametrize(
    "token", ["web1:0", "web1:net0", "web1:vm1p", "web1:52:54:00:AA:00:01", "h1:web1:0", "vm1p"]
)
def test_a_libvirt_domains_nic_by_index_alias_device_or_mac_is_its_port(token):
    found = resolve(token, views(with_libvirt))
    assert (found.host, found.port, found.kind, found.mac) == ("h1", "vm1p", "vm", MACS["h1"])
    assert found.domain == {"name": "web1", "nic": 0, "alias": "net0"}


def test_a_domain_alone_is_its_only_nic_and_one_on_two_hosts_is_refused():
    hosts = views(with_libvirt)
    assert (resolve("h2:dup", hosts).host, resolve("h2:dup", hosts).port) == ("h2", "vm2p")
    refused = {
        "web1": "has 2 NICs on h1, say which: web1:0 (0 net0 vm1p 52:54:00:aa:00:01); web1:1",
        "dup:0": "libvirt domain dup runs on h1, h2: say HOST:dup:0",
        "web1:1": "is device vnet9, which h1's links do not list",
        "web1:7": "7 is no NIC of domain web1 on h1",
        "h2:web1:0": "no libvirt domain web1 runs on h2",
        "web/1:0": "is no libvirt domain name: it contains '/'",
        "web\n1": "is no libvirt domain name: it contains a control character",
        "web1:net 0": "names no NIC of web1",
    }
    for token, said in refused.items():
        with pytest.raises(InputError, match=re.escape(said)):
            resolve(token, hosts)


def test_a_trace_from_a_domains_nic_names_the_domain_in_the_document_and_the_text():
    from vnetctl.trace.text import render

    doc = document("web1:net0", "h2:dup", edit=with_libvirt)
    assert doc["verdict"] == "delivered"
    assert doc["source"]["domain"] == {"name": "web1", "nic": 0, "alias": "net0"}
    assert (doc["destination"]["port"], doc["destination"]["domain"]["name"]) == ("vm2p", "dup")
    assert render(doc).startswith("trace h1:vm1p (vm, domain web1 NIC 0, mac 52:54:00:aa:00:01")


def test_a_bare_name_that_is_a_port_and_another_ports_domain_is_refused():
    def named(host, data):
        nics = {"h1": [("vm1", "vm1p"), ("vm2", "vm1p")], "h2": []}[host]
        data["libvirt_nics"] = [{"domain": d, "index": 0, "mac": None, "dev": dev, "alias": None}
                                for d, dev in nics]  # fmt: skip

    hosts = views(named)
    found = resolve("vm1", hosts)  # the port vm1 (its veth peer vm1p) is domain vm1's NIC
    assert (found.host, found.port, found.domain["name"]) == ("h1", "vm1p", "vm1")
    with pytest.raises(InputError, match=re.escape("vm2 is a port (h2:vm2p) and a libvirt")):
        resolve("vm2", hosts)  # a port on h2, a domain on h1
    assert resolve("vm2:0", hosts).port == "vm1p" and resolve("h2:vm2", hosts).port == "vm2p"
