"""The `tc` fact source: what tc prints, read (modules/module_utils/vnet_tc.py).

fixtures/tc/ holds tc's own output on a lab host, taken together with the recorded facts
of fixtures/facts/shaping_nioc_drifted.json and shaping_vm_port.json: parsing the one
must give the other. Shapes this kernel's iproute2 (6.1) does not print (JSON classes,
flower, fw) are written as iproute2's print functions write them, and said so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnetctl.catalog import Catalog

CATALOG = Catalog()
host = CATALOG.host_lib()
tc = sys.modules["vnet_tc"]  # installed with the host library
plan = sys.modules["vnet_tc_plan"]
FIXTURES = Path(__file__).parent / "fixtures"
RAW = FIXTURES / "tc"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / "facts" / name).read_text())


def test_the_recorded_tc_fact_is_what_parse_makes_of_tcs_output():
    raw = {
        "qdiscs": (RAW / "nioc_drifted.qdisc.json").read_text(),
        "classes": {"eth1": (RAW / "nioc_drifted.class.txt").read_text()},
        "filters": {"eth1": (RAW / "nioc_drifted.filter.json").read_text()},
    }
    parsed = json.loads(json.dumps(tc.parse(raw)))  # as recorded: tuples are lists
    assert parsed == recorded("shaping_nioc_drifted.json")["tc"]


def test_a_vm_ports_ifb_and_its_redirect_read_as_recorded():
    raw = {
        "qdiscs": (RAW / "vm_port.qdisc.json").read_text(),
        "classes": {"ifbeth2": (RAW / "vm_port.ifb-class.txt").read_text()},
        "ingress": {"eth2": (RAW / "vm_port.ingress-filter.json").read_text()},
    }
    parsed = json.loads(json.dumps(tc.parse(raw)))
    fact = recorded("shaping_vm_port.json")["tc"]
    assert parsed["ingress"] == fact["ingress"]
    assert parsed["classes"]["ifbeth2"] == fact["classes"]["ifbeth2"]
    assert parsed["qdiscs"] == fact["qdiscs"]
    (rule,) = parsed["ingress"]["eth2"]
    assert tc.text(rule) == "pref 1 all u32 redirect ifbeth2"


class Host:
    """A host whose tc answers from `outputs` (argv -> text); records the calls."""

    def __init__(self, outputs: dict):
        self.outputs, self.calls = outputs, []

    def __call__(self, argv, stdin=None):
        self.calls.append(" ".join(argv))
        if " ".join(argv) not in self.outputs:
            raise host.ModuleError(f"{argv[0]} failed")
        return self.outputs[" ".join(argv)]


def test_one_process_for_every_qdisc_then_only_shaped_devices_are_read():
    runner = Host({
        "tc -j -s qdisc show": (RAW / "vm_port.qdisc.json").read_text(),
        "tc -j -d class show dev eth2": "",
        "tc -j filter show dev eth2": "",
        "tc -j -d class show dev ifbeth2": (RAW / "vm_port.ifb-class.txt").read_text(),
        "tc -j filter show dev ifbeth2": "",
        "tc -j filter show dev eth2 ingress": (RAW / "vm_port.ingress-filter.json").read_text(),
    })  # fmt: skip
    facts = host.Facts(runner=runner, modules=[CATALOG.load("traffic_shaping")])
    fact = facts.get("tc")
    assert runner.calls[0] == "tc -j -s qdisc show"
    # eth0, eth1 and lo have their kernel's default qdisc: nothing more is read of them
    assert not [c for c in runner.calls if "eth0" in c or "eth1" in c or " lo" in c]
    assert sorted(runner.calls[1:]) == sorted(c for c in runner.outputs if c != runner.calls[0])
    assert fact["classes"]["ifbeth2"]["1:2"]["ceil"] == 30000


def test_a_host_without_tc_has_no_tc_fact_rather_than_failing():
    facts = host.Facts(runner=Host({}), modules=[CATALOG.load("traffic_shaping")])
    assert facts.get("tc") is None


@pytest.mark.parametrize(
    ("text", "kbit"),
    [("100Kbit", 100), ("1Mbit", 1000), ("1.5Mbit", 1500), ("10Gbit", 10_000_000),
     ("999bit", 1), ("123456Kbit", 123456), ("1Kibit", 1), ("2Mibit", 2097)],
)  # fmt: skip
def test_rates_as_tc_prints_them(text, kbit):
    assert tc.parse_rate(text) == kbit


def test_a_rate_tc_could_print_and_this_cannot_read_is_an_error():
    with pytest.raises(host.ModuleError, match="cannot read"):
        tc.parse_rate("12 Mbps")


def test_classes_printed_as_json_read_as_the_text_form():
    """iproute2 versions that print classes as JSON (q_htb.c htb_print_opt: rate and
    ceil in bytes/s) give the same classes as 6.1's text."""
    text = (RAW / "nioc_drifted.class.txt").read_text()
    as_text = tc.parse_classes(text)
    items = []
    for cid, cls in as_text.items():
        item = {"class": "htb", "handle": cid, "leaf": cls["leaf"]}
        item.update({"root": True} if cls["parent"] is None else {"parent": cls["parent"]})
        item.update(
            {k: cls[k] for k in ("prio", "quantum", "burst", "cburst") if cls[k] is not None}
        )
        item.update(rate=cls["rate"] * 125, ceil=cls["ceil"] * 125)
        items.append(item)
    assert tc.parse_classes(json.dumps(items)) == as_text


def test_a_vlan_match_reads_from_flower_and_a_mark_from_fw():
    """As f_flower.c and f_fw.c print them (fw's object was named "handle" before 2024)."""
    flower = [
        {
            "protocol": "802.1Q",
            "pref": 7,
            "kind": "flower",
            "options": {"handle": 1, "classid": "1:a0", "keys": {"vlan_id": 10}, "not_in_hw": True},
        }
    ]
    fw_old = [
        {
            "protocol": "all",
            "pref": 8,
            "kind": "fw",
            "options": {"handle": {"mark": "0x10", "mask": "0xffffffff"}, "classid": "1:a1"},
        }
    ]
    fw_new = [{"protocol": "all", "pref": 9, "kind": "fw", "options": {
        "fw": {"mark": "0x10", "mask": "0xffffffff"}, "classid": "1:a1"}}]  # fmt: skip
    (vlan,) = tc.parse_filters(json.dumps(flower))
    assert tc.text(vlan) == "pref 7 802.1q vlan 10" and vlan["flowid"] == "1:a0"
    assert [tc.text(r) for r in tc.parse_filters(json.dumps(fw_old + fw_new))] == [
        "pref 8 all fwmark 0x10", "pref 9 all fwmark 0x10"]  # fmt: skip
    assert " ".join(map(str, tc.command("eth1", "1:", dict(vlan)))) == (
        "filter add dev eth1 parent 1: protocol 802.1q pref 7 flower vlan_id 10 classid 1:a0"
    )


def test_a_u32_match_no_field_names_is_kept_raw_and_made_again_as_it_was():
    """A hand-made filter on the TTL (IPv4 byte 8): shown raw, re-created key for key."""
    out = json.dumps([{"protocol": "ip", "pref": 3, "kind": "u32", "options": {
        "fh": "800::800", "flowid": "1:9", "match": {"value": "1000000", "mask": "ff000000",
                                                    "offmask": "", "off": 8}}}])  # fmt: skip
    (rule,) = tc.parse_filters(out)
    assert tc.text(rule) == "pref 3 ip u32 01000000/ff000000@8"
    again = tc.from_text(tc.text(rule).split())
    assert tc.command("eth1", "1:", dict(again, flowid="1:9"))[-8:] == [
        "match", "u32", "0x01000000", "0xff000000", "at", 8, "classid", "1:9"]  # fmt: skip


def test_a_classifier_it_cannot_read_is_named_and_cannot_be_made_again():
    (rule,) = tc.parse_filters(json.dumps([{"protocol": "all", "pref": 4, "kind": "bpf",
                                            "options": {"flowid": "1:5"}}]))  # fmt: skip
    assert tc.text(rule) == "pref 4 all bpf"
    assert tc.command("eth1", "1:", tc.from_text(["pref", "4", "all", "bpf"])) is None


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_port_blocks_cover_exactly_the_range(a, b):
    low, high = min(a, b), max(a, b)
    ports = set()
    for value, mask in tc.port_blocks(low, high):
        size = 0x10000 - mask
        assert value & ~mask & 0xFFFF == 0 and size & (size - 1) == 0
        ports.update(range(value, value + size))
    assert ports == set(range(low, high + 1))


@given(st.fixed_dictionaries({}, optional={
    "dscp": st.integers(0, 63), "protocol": st.integers(0, 255),
    "dport": st.integers(1, 65535).map(lambda p: (p, 0xFFFF)),
    "sport": st.sampled_from([(49152, 0xFFC0), (1024, 0xFC00), (22, 0xFFFF)]),
}), st.sampled_from(["ip", "ipv6"]))  # fmt: skip
def test_a_rules_text_reads_back_as_the_same_rule(fields, proto):
    rule = {"pref": 12, "proto": proto, "fields": fields}
    text = tc.text(rule)
    assert tc.text(tc.from_text(text.split())) == text


def test_kernel_config_and_link_speeds():
    config = "CONFIG_NET_SCH_HTB=y\nCONFIG_NET_SCH_FQ_CODEL=m\n# CONFIG_NET_SCH_SFQ is not set\n"
    assert plan.parse_kernel_config(config) == {"NET_SCH_HTB": "y", "NET_SCH_FQ_CODEL": "m"}
    speeds = "/sys/class/net/eno1/speed:1000\n/sys/class/net/eth0/speed:-1\n"
    assert plan.parse_link_speeds(speeds) == {"eno1": 1000}


def test_the_shaping_host_code_imports_nothing_heavy_at_load():
    """Every host pays its play's imports: the shaping files load with C modules and the
    host library only; ipaddress only inside the functions that read a network."""
    import ast  # noqa: PLC0415

    light = {"sys", "zlib", "_json", "vnet_core", "vnet_facts", "vnet_host", "vnet_htb", "vnet_tc",
             "vnet_ovs", "vnet_tc_ovs", "vnet_tc_plan", "vnet_tc_policy", "vnet_persist",
             "ansible.module_utils", "ansible.module_utils.vnet_host"}  # fmt: skip
    files = [CATALOG.directory / "traffic_shaping.py",
             *(CATALOG.directory / "module_utils").glob("vnet_tc*.py"),
             CATALOG.directory / "module_utils" / "vnet_htb.py"]  # fmt: skip
    for path in files:
        tree = ast.parse(path.read_text())
        loaded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                loaded |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                loaded.add(node.module)
        inside = {n.names[0].name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                  for n in ast.walk(f) if isinstance(n, ast.Import)}  # fmt: skip
        assert loaded - inside <= light, (path.name, loaded - inside - light)
        assert inside <= {"ipaddress"}, (path.name, inside)
