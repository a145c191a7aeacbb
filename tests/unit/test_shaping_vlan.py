"""A `vlan` match where the kernel has no flower (this lab's): cls_bpf with a classic BPF
program on the tag the kernel keeps beside the packet. Read back from what tc 6.1
printed on the lab's kernel for the program vnetctl wrote; written as one batch word."""

from __future__ import annotations

from vnetctl.catalog import Catalog

CATALOG = Catalog()
lib = CATALOG.host_lib()
tc = __import__("vnet_tc")  # installed by host_lib() under the name modules import

# `tc -j filter show dev eth1` after vnetctl's filter for VLAN 10 (iproute2 6.1, kernel
# 6.18, on a member of an OVS bond of the lab)
RECORDED = (
    '[{"parent":"1:","protocol":"802.1Q","pref":10,"kind":"bpf","chain":0},{"parent":"1:",'
    '"protocol":"802.1Q","pref":10,"kind":"bpf","chain":0,"options":{"handle":"0x1",'
    '"flowid":"1:10","not_in_hw":true,"bytecode":{"length":11,"insns":[{"code":32,"jt":0,'
    '"jf":0,"k":4294963248},{"code":21,"jt":2,"jf":0,"k":0},{"code":32,"jt":0,"jf":0,'
    '"k":4294963244},{"code":5,"jt":0,"jf":0,"k":3},{"code":40,"jt":0,"jf":0,"k":12},'
    '{"code":21,"jt":0,"jf":3,"k":33024},{"code":40,"jt":0,"jf":0,"k":14},{"code":84,'
    '"jt":0,"jf":0,"k":4095},{"code":21,"jt":1,"jf":0,"k":10},{"code":6,"jt":0,"jf":0,'
    '"k":0},{"code":6,"jt":0,"jf":0,"k":4294967295}]}}}]'
)
# the program vnetctl wrote before it read tags in the frame (the kernel's tag only)
ACCEL_ONLY = (
    '[{"parent":"1:","protocol":"802.1Q","pref":10,"kind":"bpf","chain":0,"options":{'
    '"handle":"0x1","flowid":"1:10","not_in_hw":true,"bytecode":{"length":7,"insns":[{'
    '"code":32,"jt":0,"jf":0,"k":4294963248},{"code":21,"jt":3,"jf":0,"k":0},{"code":32,'
    '"jt":0,"jf":0,"k":4294963244},{"code":84,"jt":0,"jf":0,"k":4095},{"code":21,"jt":1,'
    '"jf":0,"k":10},{"code":6,"jt":0,"jf":0,"k":0},{"code":6,"jt":0,"jf":0,"k":4294967295}]}}}]'
)


def test_the_program_tc_printed_reads_as_the_vlan_match_and_is_written_back_alike():
    (rule,) = tc.parse_filters(RECORDED)
    assert rule == {"pref": 10, "proto": "802.1q", "flowid": "1:10", "vlan": 10,
                    "classifier": "bpf"}  # fmt: skip
    text = tc.text(rule)
    assert text == "pref 10 802.1q vlan 10 bpf"
    again = tc.from_text(text.split())
    assert again == {"pref": 10, "proto": "802.1q", "vlan": 10, "classifier": "bpf"}
    tokens = tc.command("eth1", "1:", dict(again, flowid="1:10"))
    assert tokens == [
        "filter",
        "add",
        "dev",
        "eth1",
        "parent",
        "1:",
        "protocol",
        "802.1q",
        "pref",
        10,
        "bpf",
        "bytecode",
        tc.vlan_program(10),
        "classid",
        "1:10",
    ]
    assert all(lib.vnet_core.token_problem(t) is None for t in tokens)


def test_the_program_reads_the_tag_in_the_frame_when_the_kernel_keeps_none():
    """Open vSwitch's userspace datapath sends tagged frames through AF_PACKET: the tag
    is in the frame (bytes 12-15), not beside it; the program falls back to it."""
    insns = [tuple(int(n) for n in i.split("+")) for i in tc.vlan_program(10).split(",")[1:]]
    assert (0x28, 0, 0, 12) in insns and (0x15, 0, 3, 0x8100) in insns
    assert (0x28, 0, 0, 14) in insns


def test_the_older_program_without_the_frame_tag_is_not_read_as_the_vlan_match():
    """Read as a bpf filter of its own: drift shows it, and the next run replaces it
    with the program that also sees OVS's tags."""
    (rule,) = tc.parse_filters(ACCEL_ONLY)
    assert "vlan" not in rule and rule["kind"] == "bpf"


def test_another_program_is_not_read_as_a_vlan():
    other = RECORDED.replace('"k":10}', '"k":10},{"code":6,"jt":0,"jf":0,"k":0}').replace(
        '"length":11', '"length":12'
    )
    (rule,) = tc.parse_filters(other)
    assert "vlan" not in rule and rule["kind"] == "bpf"


def test_nioc_vlans_playbook_plans_one_vlan_filter_per_class_on_the_bond():
    """playbooks/nioc-vlans.yml's shaping task on a full kernel's bond (recorded on the
    Vagrant tier; its tc features declared here: flower, then none but cls_bpf)."""
    import copy  # noqa: PLC0415
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    root = Path(__file__).parents[2]
    play = yaml.safe_load((root / "playbooks" / "nioc-vlans.yml").read_text())[0]
    (task,) = [t["traffic_shaping"] for t in play["tasks"] if "traffic_shaping" in t]
    params = json.loads(
        json.dumps(task)
        .replace('"{{ uplink_speed }}"', "1000")
        .replace('"{{ management_vlan }}"', "10")
        .replace('"{{ migration_vlan }}"', "200")
        .replace('"{{ storage_vlan }}"', "100")
    )
    facts = json.loads((root / "tests/unit/fixtures/facts/fullkernel_bond_lacp.json").read_text())
    module = CATALOG.load("traffic_shaping")
    for features, kind in (
        ({"NET_CLS_FLOWER": "m"}, "flower vlan_id"),
        ({"NET_CLS_BPF": "y"}, "bpf bytecode"),
    ):
        known = copy.deepcopy(facts)
        known["tc_kernel"] = dict(features, NET_SCH_HTB="y", NET_CLS_U32="y")
        known.update(tc={"qdiscs": {}, "classes": {}, "filters": {}, "ingress": {}}, link_speeds={})
        steps = [" ".join(s) for s in lib.plan(module, params, lib.Facts(known))["steps"]]
        filters = [s for s in steps if s.startswith("tc filter add dev bond0")]
        assert len(filters) == 3 and all(" protocol 802.1q " in f and kind in f for f in filters)
