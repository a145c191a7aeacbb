"""traffic_shaping's planning where the lab's kernel cannot record the host: a NIC whose
driver reports its speed, a kernel with fq_codel, flower and fw, a root someone else
made. Each case starts from facts recorded on the lab and changes, in the open, only
what it is about."""

from __future__ import annotations

import copy
import json
import zlib
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
lib = CATALOG.host_lib()
module = CATALOG.load("traffic_shaping")
FACTS = Path(__file__).parent / "fixtures" / "facts"
FULL_KERNEL = {"NET_SCH_HTB": "y", "NET_SCH_FQ_CODEL": "m", "NET_CLS_U32": "m",
               "NET_CLS_FLOWER": "m", "NET_CLS_FW": "m", "NET_ACT_MIRRED": "m", "IFB": "m",
               "NET_SCH_INGRESS": "m"}  # fmt: skip


def recorded(name: str) -> dict:
    return json.loads((FACTS / name).read_text())


def as_nic(facts: dict, dev: str, speed: int | None) -> dict:
    """`dev` as a physical NIC: no link kind, and the driver's speed (None: it reports none)."""
    facts = copy.deepcopy(facts)
    for link in facts["links"]:
        if link["ifname"] == dev:
            link.pop("linkinfo", None)
    facts["link_speeds"] = {dev: speed} if speed else {}
    return facts


def plan(params: dict, facts: dict) -> tuple[list[str], list[str]]:
    planned = lib.plan(module, params, lib.Facts(facts))
    return [c["field"] for c in planned["changes"]], [" ".join(s) for s in planned["steps"]]


def refused(params: dict, facts: dict) -> str:
    with pytest.raises(lib.ModuleError) as err:
        plan(params, facts)
    return str(err.value)


def test_a_nics_reported_speed_is_the_links_and_a_higher_declared_one_is_refused():
    nic = as_nic(recorded("shaping_none.json"), "eth1", 1000)
    _, steps = plan({"name": "eth1", "classes": [{"name": "a", "limit": 100,
                                                   "match": [{"dscp": 46}]}]}, nic)  # fmt: skip
    assert (
        "tc class add dev eth1 parent 1: classid 1:1 htb rate 1000mbit ceil 1000mbit quantum 1514"
        " burst 1704036 cburst 1704036" in steps
    )
    _, lower = plan({"name": "eth1", "speed": 800}, nic)  # an upstream bottleneck: allowed
    assert any("rate 800mbit ceil 800mbit" in s for s in lower)
    assert refused({"name": "eth1", "speed": 10000}, nic) == (
        "speed 10000 Mbit/s is above the 1000 Mbit/s eth1 reports"
    )
    assert refused({"name": "eth1", "speed": 100, "egress_limit": 200}, nic) == (
        "egress_limit 200 Mbit/s is above eth1's speed 100 Mbit/s"
    )
    unknown = as_nic(recorded("shaping_none.json"), "eth1", None)  # a NIC whose link is down
    assert refused({"name": "eth1", "egress_limit": None, "classes": []}, unknown) == (
        "eth1 reports no usable speed: declare speed (Mbit/s)"
    )


def test_where_the_kernel_has_fq_codel_the_leaves_are_fq_codel():
    facts = dict(recorded("shaping_none.json"), tc_kernel=FULL_KERNEL)
    _, steps = plan({"name": "eth1", "speed": 100}, facts)
    assert "tc qdisc add dev eth1 parent 1:2 handle 2: fq_codel" in steps
    pinned = plan({"name": "eth1", "speed": 100, "leaf_qdisc": "pfifo"}, facts)[1]
    assert "tc qdisc add dev eth1 parent 1:2 handle 2: pfifo" in pinned


def test_a_kernel_upgraded_to_fq_codel_swaps_each_leaf_and_keeps_the_classes():
    facts = dict(recorded("shaping_nioc.json"), tc_kernel=FULL_KERNEL)
    params = {"name": "eth1", "speed": 1000, "classes": [
        {"name": "management", "reservation": 50,
         "match": [{"protocol": "tcp", "dport": 22}, {"dscp": 48}]},
        {"name": "migration", "limit": 400, "match": [{"protocol": "tcp", "dport": "49152-49215"}]},
        {"name": "storage", "reservation": 300, "shares": "high",
         "match": [{"protocol": "tcp", "dport": 3260}, {"protocol": "tcp", "dport": 2049}]},
        {"name": "vm", "shares": "high"}]}  # fmt: skip
    changes, steps = plan(params, facts)
    assert all(c.endswith(".leaf") for c in changes) and len(changes) == 4
    assert steps[:2] == [
        "tc qdisc del dev eth1 parent 1:2",
        "tc qdisc add dev eth1 parent 1:2 handle 2: fq_codel",
    ]
    assert not [s for s in steps if " class " in s or " root" in s]


def test_where_the_kernel_config_cannot_be_read_leaves_are_pfifo_and_nothing_is_refused():
    facts = dict(recorded("shaping_none.json"), tc_kernel=None)
    classes = [{"name": "tenant", "match": [{"vlan": 10}]},
               {"name": "marked", "match": [{"fwmark": 16}]}]  # fmt: skip
    _, steps = plan({"name": "eth1", "speed": 100, "classes": classes}, facts)
    assert "tc qdisc add dev eth1 parent 1:2 handle 2: pfifo" in steps
    tenant = f"1:{0x10 + zlib.crc32(b'tenant') % (0xFEFF - 0x10 + 1):x}"
    flower = "tc filter add dev eth1 parent 1: protocol 802.1q pref 10 flower vlan_id 10"
    assert f"{flower} classid {tenant}" in steps
    assert any(
        s.startswith(
            "tc filter add dev eth1 parent 1: protocol all pref 11 handle 0x10 fw classid 1:"
        )
        for s in steps
    )


def test_a_root_someone_else_made_is_replaced_whole():
    facts = recorded("shaping_nioc.json")
    foreign = copy.deepcopy(facts)
    root = next(q for q in foreign["tc"]["qdiscs"]["eth1"] if q["root"])
    root["options"]["default"] = "0x30"  # an HTB root, but not this layout
    _, steps = plan({"name": "eth1", "speed": 1000}, foreign)
    assert steps[:2] == [
        "tc qdisc del dev eth1 root",
        "tc qdisc add dev eth1 root handle 1: htb default 0x2",
    ]
    tbf = copy.deepcopy(recorded("shaping_none.json"))
    tbf["tc"]["qdiscs"]["eth1"] = [{"kind": "tbf", "handle": "8001:", "parent": None,
                                    "options": {}, "root": True}]  # fmt: skip
    assert plan({"name": "eth1", "speed": 100}, tbf)[1][:2] == [
        "tc qdisc del dev eth1 root",
        "tc qdisc add dev eth1 root handle 1: htb default 0x2",
    ]
    # the kernel's default root (handle 0:) is simply replaced by the add
    assert plan({"name": "eth1", "speed": 100}, recorded("shaping_none.json"))[1][0] == (
        "tc qdisc add dev eth1 root handle 1: htb default 0x2"
    )


def test_class_ids_that_collide_are_probed_to_the_next_free_one():
    span = 0xFEFF - 0x10 + 1
    seen: dict[int, str] = {}
    for i in range(100000):
        name = f"c{i}"
        minor = 0x10 + zlib.crc32(name.encode()) % span
        if minor in seen:
            first, second = sorted([seen[minor], name])
            break
        seen[minor] = name
    ids = module.tc_policy.class_ids(
        [{"name": first, "match": [{}]}, {"name": second, "match": [{}]}]
    )
    assert ids[first] == minor and ids[second] == minor + 1  # in name order
    pinned = module.tc_policy.class_ids(
        [{"name": "a", "id": minor, "match": [{}]}, {"name": first, "match": [{}]}]
    )
    assert pinned == {"default": 2, "a": minor, first: minor + 1}


def test_too_many_filters_are_refused():
    params = {"name": "eth1", "speed": 100, "classes": [{"name": "all", "match": [
        {"protocol": "udp", "sport": "1-65535", "dport": "1-65535"}]}]}  # fmt: skip
    assert (
        refused(params, recorded("shaping_none.json"))
        == "the matches need 512 filters; at most 500"
    )


def test_an_ifb_name_too_long_for_the_kernel_is_derived_from_the_port():
    assert module.ifb_name("vnet12") == "ifbvnet12"
    long = module.ifb_name("tap-0123456789")
    assert long == f"ifb{zlib.crc32(b'tap-0123456789'):08x}" and len(long) <= 15


def test_shares_as_words_and_numbers():
    facts = recorded("shaping_none.json")
    _, steps = plan({"name": "eth1", "speed": 100, "classes": [
        {"name": "a", "shares": "HIGH", "match": [{"dscp": 1}]},
        {"name": "b", "shares": "25", "match": [{"dscp": 2}]}]}, facts)  # fmt: skip
    quanta = sorted(
        int(s.split(" quantum ")[1].split()[0])
        for s in steps
        if " htb rate " in s and "classid 1:1 " not in s
    )
    assert quanta == [409600, 819200, 1638400]  # b 25, default normal 50, a high 100 (x 16 KiB)
