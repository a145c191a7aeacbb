"""Micro-segmentation's Open vSwitch compiler (modules/module_utils/vnet_ovs_microseg.py):
the flows of a per-port policy, read back from `ovs-ofctl --names dump-flows` as OVS 3.1
printed them in tests/integration/test_ovs_microseg_lab.py (fixtures/ovs/microseg_*:
the lab's policy applied; then a rule deleted, a default changed by hand and another
tool's flow added; then db's port made again), and planned from those dumps."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnetctl.catalog import Catalog

Catalog().host_lib()  # installs the host library's modules
ms = sys.modules["vnet_ovs_microseg"]
core = sys.modules["vnet_core"]
FIXTURES = Path(__file__).parent / "fixtures" / "ovs"
RECORDED = json.loads((FIXTURES / "microseg_three_tier.json").read_text())
IR, OFPORTS = RECORDED["ir"], RECORDED["ofports"]
WEB, DB = "52:54:00:30:00:01", "52:54:00:30:00:02"


def dump(name: str) -> str:
    return (FIXTURES / f"microseg_{name}.dump-flows.txt").read_text()


def lines(steps) -> list[str]:
    assert all(tool == "ovs-ofctl" for tool, _ in steps)
    return [core.check_line(line) for _, line in steps]


def port(mac="52:54:00:00:00:09", ingress=(), egress=(), default="drop") -> dict:
    return {"port": "vnet9", "mac": mac, "groups": ["g"], "ingress": list(ingress),
            "egress": list(egress), "default_ingress": default,
            "default_egress": default}  # fmt: skip


def rule(rid="g/1", action="allow", proto="tcp", peers=("any",), family="any", **extra) -> dict:
    return dict({"id": rid, "action": action, "family": family, "proto": proto,
                 "peers": list(peers), "log": False}, **extra)  # fmt: skip


def compiled(*ports, numbers=None) -> list[dict]:
    numbers = {"vnet9": 7} if numbers is None else numbers
    return ms.compile_ir({"bridge": "br-vm", "ports": list(ports)}, numbers)


# ---- port ranges --------------------------------------------------------------------


def _min_cover(lo: int, hi: int) -> int:
    """The fewest aligned power-of-two blocks covering lo..hi, by exhaustive search."""
    best = {hi + 1: 0}
    for start in range(hi, lo - 1, -1):
        sizes = [1 << k for k in range(17) if start % (1 << k) == 0 and start + (1 << k) <= hi + 1]
        best[start] = 1 + min(best[start + s] for s in sizes)
    return best[lo]


@given(st.integers(0, 300), st.integers(0, 300))
def test_a_port_range_is_the_fewest_value_mask_pairs_covering_exactly_it(a, b):
    lo, hi = min(a, b), max(a, b)
    pairs = ms.port_masks(lo, hi)
    covered = {p for p in range(1024) for v, m in pairs if p & m == v}
    assert covered == set(range(lo, hi + 1))
    assert len(pairs) == _min_cover(lo, hi)


def test_port_ranges_as_ovs_prints_them():
    assert ms.tp_values([443, "8000-8080"]) == ["443", "0x1f40/0xffc0", "0x1f80/0xfff0", "8080"]
    assert ms.tp_values(["0-65535"]) == []  # every port: no tp_dst match at all
    assert len(ms.tp_values(["1-65535"])) == 16


# ---- flows --------------------------------------------------------------------------


def test_rules_keep_their_order_and_the_default_comes_last():
    rules = [rule("g/1", "deny", ports=[22]), rule("g/2", ports=[22, 443])]
    got = [f for f in compiled(port(ingress=rules)) if f["table"] == ms.INGRESS
           and f["priority"] != "0"]  # fmt: skip
    prio = {ms.unnote(f["actions"]).split(" ")[2]: int(f["priority"]) for f in got}
    assert prio["g/1"] > prio["g/2"] > prio["default"]
    denied = [f for f in got if "g/1" in ms.unnote(f["actions"])]
    assert {f["actions"].split(",")[-1].startswith("note:") for f in denied} == {True}  # drop


def test_families_peers_and_icmp_types_pick_the_protocols():
    ingress = [rule("g/1", proto="any", peers=["10.0.0.0/8", "fd00::5/128"]),
               rule("g/2", proto="icmp", family="ipv4", icmp_types=["echo-request", 0]),
               rule("g/3", proto="icmpv6", family="ipv6", icmp_types=["echo-request"]),
               rule("g/4", proto="udp", peers=[]),  # an empty group: matches nothing
               rule("g/5", action="reject", proto="tcp", family="ipv6", ports=[22])]  # fmt: skip
    got = {}
    for f in compiled(port(ingress=ingress)):
        if f["table"] == ms.INGRESS and f["priority"] not in ("0", str(ms.DEFAULT)):
            rid = ms.unnote(f["actions"]).split(" ")[2]
            got.setdefault(rid, []).append(ms.text(f).split(",", 3)[3])
    assert sorted(got["g/1"])[0].startswith("ip,dl_dst=52:54:00:00:00:09,nw_src=10.0.0.0/8 ")
    assert sorted(got["g/1"])[1].startswith("ipv6,dl_dst=52:54:00:00:00:09,ipv6_src=fd00::5 ")
    assert [t.split(" ")[0].split(",")[-1] for t in got["g/2"]] == ["icmp_type=8", "icmp_type=0"]
    assert [t.split(" ")[0] for t in got["g/3"]] == ["icmp6,dl_dst=52:54:00:00:00:09,icmp_type=128"]
    assert "g/4" not in got
    assert got["g/5"] == ["tcp6,dl_dst=52:54:00:00:00:09,tp_dst=22 actions="
                          + ms.note("52:54:00:00:00:09 ingress g/5 reject")]  # fmt: skip


def test_egress_rules_match_the_port_and_its_mac_and_the_peer_as_destination():
    (f,) = [f for f in compiled(port(egress=[rule(peers=["10.1.2.3/32"], ports=[5432])]))
            if f["table"] == ms.EGRESS and f["priority"] not in ("0", str(ms.DEFAULT))]  # fmt: skip
    assert f["match"] == {"in_port": "7", "dl_src": "52:54:00:00:00:09", "nw_dst": "10.1.2.3",
                          "tp_dst": "5432"}  # fmt: skip
    assert f["actions"].endswith(f",resubmit(,{ms.INGRESS})")


def test_a_port_not_made_yet_gets_ingress_rules_and_its_mac_is_dropped_from_anywhere():
    flows = compiled(port(egress=[rule()], ingress=[rule()]), numbers={})
    assert not [f for f in flows if f["table"] == ms.EGRESS and f["priority"] != "0"]
    guards = [f for f in flows if f["table"] == 0 and f["priority"] == str(ms.GUARD)]
    assert {(f["protocols"][0], f["match"]["dl_src"]) for f in guards} == {
        ("ip", "52:54:00:00:00:09"), ("ipv6", "52:54:00:00:00:09")}  # fmt: skip
    assert all(ms.unnote(f["actions"]) and "," not in f["actions"] for f in guards)  # drop


def test_no_members_no_flows():
    assert ms.flows({"bridge": "br-vm", "ports": []}, {}) == []


def test_every_flow_is_microsegs_and_a_valid_command_word():
    for line in ms.flows(IR, OFPORTS):
        assert int(line.split(",")[0].split("=")[1], 16) & ms.MASK == ms.BASE
        assert core.token_problem(line) is None


def test_a_note_reads_back_as_written():
    for label in ("52:54:00:00:00:09 egress web/2 allow", "x", "123456"):
        assert ms.unnote("resubmit(,4)," + ms.note(label) + ",resubmit(,5)") == label
    assert ms.unnote("drop") is None


# ---- read and plan, from OVS's own dumps --------------------------------------------


def test_the_recorded_dump_reads_as_the_policy_and_plans_nothing():
    now = ms.read(dump("applied"), OFPORTS)
    assert now == ms.desired(IR, OFPORTS)
    assert ms.plan(IR, {"flows": dump("applied"), "ofports": OFPORTS}) == []
    assert sorted(now["ports"][DB]["ingress"]) == ["db/1", "db/2", "db/3", "db/4", "default",
                                                   "hook"]  # fmt: skip


def test_the_parsed_fact_reads_as_the_text():
    parsed = sys.modules["vnet_ovs_config"].parse_flows(dump("applied"))
    assert ms.read(parsed, OFPORTS) == ms.read(dump("applied"), OFPORTS)


def test_a_rule_deleted_and_a_default_changed_by_hand_are_differences():
    now = ms.read(dump("hand_changed"), OFPORTS)
    want = ms.desired(IR, OFPORTS)
    assert "db/1" not in now["ports"][DB]["ingress"]
    assert now["ports"][DB]["ingress"]["db/4"] == want["ports"][DB]["ingress"]["db/4"]
    assert "default" not in now["ports"][WEB]["egress"]  # its note went with its actions
    (changed,) = now["unlabelled"]
    assert "table=41" in changed and changed.endswith(" actions=drop")
    steps = lines(ms.plan(IR, {"flows": dump("hand_changed"), "ofports": OFPORTS}))
    (delete,) = [s for s in steps if " delete_strict " in s]
    cookie = ms.rule_cookie(WEB, "egress", "default")
    assert delete.startswith(f"br-ms delete_strict cookie={cookie:#x}/0xffffffffffffffff,table=41,")
    added = [s for s in steps if " add " in s]
    assert len(added) == 1 + len(want["ports"][DB]["ingress"]["db/1"])
    assert not [s for s in steps if "0x77" in s.split(",")[0]]  # another tool's flow


def test_a_port_made_again_loses_its_old_numbers_flows_and_gets_new_ones():
    """The dump was taken after the hand changes above too: web's changed default
    (in_port 1) is put back as well."""
    numbers = RECORDED["ofports_made_again"]
    old, new = OFPORTS["msdbp"], numbers["msdbp"]
    steps = lines(ms.plan(IR, {"flows": dump("made_again"), "ofports": numbers}))

    def in_ports(verb):
        return {p for s in steps if f" {verb} " in s
                for p in re.findall(r"in_port=(\w+)", s.split(",actions=")[0])}  # fmt: skip

    assert in_ports("delete_strict") == {str(old), "1"}
    assert in_ports("add") == {str(new), "1"}
    assert ms.desired(IR, numbers)["ports"][DB]["egress"]["hook"][0].count(f"in_port={new}")


def test_the_plan_deletes_before_it_adds_in_one_bundle():
    steps = lines(ms.plan(IR, {"flows": dump("made_again"), "ofports": OFPORTS}))
    verbs = [s.split(" ")[1] for s in steps]
    assert verbs == sorted(verbs, key=lambda v: v != "delete_strict")
    ((argv, _),) = sys.modules["vnet_ovs"].ofctl_batches(steps)
    assert argv == ["ovs-ofctl", "--bundle", "add-flows", "br-ms", "-"]


@pytest.mark.parametrize("name", ["applied", "hand_changed", "made_again"])
def test_only_microsegs_cookies_are_read(name):
    for text in ms.read(dump(name), OFPORTS)["flows"]:
        assert int(text.split(",")[0].split("=")[1], 16) & ms.MASK == ms.BASE


def test_a_port_name_ovs_quotes_reads_as_its_number():
    """`ovs-ofctl --names` quotes a name with "-" in it: in_port="vm-1"."""
    flows = ms.flows({"bridge": "br-vm", "ports": [port()]}, {"vnet9": 7})
    quoted = [f.replace(",actions=", " actions=").replace("in_port=7", 'in_port="vm-1"')
              for f in flows]  # fmt: skip
    dumped = "\n".join(" " + f for f in quoted)
    want = ms.desired({"bridge": "br-vm", "ports": [port()]}, {"vnet9": 7})
    assert ms.read(dumped, {"vm-1": 7}) == want


def test_a_logged_rule_says_so_in_its_note_and_counts_under_its_own_cookie():
    logged = compiled(port(ingress=[rule("g/1", log=True), rule("g/2")]))
    notes = {ms.unnote(f["actions"]): f["cookie"] for f in logged if f["table"] == ms.INGRESS
             and f["priority"] != "0"}  # fmt: skip
    assert set(notes) == {"52:54:00:00:00:09 ingress g/1 allow+log",
                          "52:54:00:00:00:09 ingress g/2 allow",
                          "52:54:00:00:00:09 ingress default drop"}  # fmt: skip
    assert len(set(notes.values())) == 3


def test_table_0_hooks_sit_above_port_security_and_its_gate():
    portsec = sys.modules["vnet_ovs_portsec"]
    theirs = (portsec.DROP, portsec.ALLOW, portsec.ND_DROP, portsec.ND_ALLOW, portsec.TAGS,
              portsec.GATE_DROP, portsec.GATE_ALLOW)  # fmt: skip
    assert min(ms.HOOK, ms.GUARD, ms.HOOK_OWN, ms.EXEMPT) > max(theirs)
    assert ms.BASE & ms.MASK == ms.BASE and portsec.GATE & ms.MASK != ms.BASE
    assert sys.modules["vnet_ovs_config"].group_cookie("web") & ms.MASK != ms.BASE


def test_each_bridge_tracks_its_connections_in_its_own_zone():
    def zones(bridge):
        flows = ms.flows({"bridge": bridge, "ports": [port()]}, {"vnet9": 7})
        return set(re.findall(r"zone=(\d+)", "\n".join(flows)))

    assert zones("br-a") == {str(ms.zone("br-a"))}
    assert zones("br-b") == {str(ms.zone("br-b"))} != zones("br-a")


def test_plan_takes_the_hosts_recorded_facts_too():
    facts = sys.modules["vnet_facts"].Facts
    for name, numbers in (("applied", OFPORTS), ("made_again", RECORDED["ofports_made_again"])):
        parsed = sys.modules["vnet_ovs_config"].parse_flows(dump(name))
        interfaces = {name: {"ofport": number} for name, number in numbers.items()}
        recorded = facts({"ovs_flows": {"br-ms": parsed}, "ovs_config": {"interfaces": interfaces}})
        assert ms.plan(IR, recorded) == ms.plan(IR, {"flows": dump(name), "ofports": numbers})
    assert ms.plan(IR, recorded) != []
