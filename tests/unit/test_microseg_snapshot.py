"""security_groups keeps its declared policy on the host (vnet_sg_document) and
`vnetctl snapshot` writes it back (vnetctl/fleet/microseg/snapshot.py): planned on
recorded facts, the snapshot's task resolves to the same compiled policy; a table that
differs from its declaration is reported, never written back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.unit.test_microseg_resolve import CATALOG, GROUPS, VMS, expand, nftseg
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expansion
from vnetctl.fleet.expanders import expand as expand_fleet
from vnetctl.fleet.microseg.snapshot import snapshot_groups
from vnetctl.inventory.loader import build_inventory
from vnetctl.playbook.loader import parse_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.snapshot.playbook import build_playbook

DOCUMENT = "/etc/vnetctl/microseg/br-vm/app.json"


def facts_after(args, table=True, document=True):
    """kvm facts once the task `args` (expanded) was applied: its table and document."""
    data = json.loads((Path(__file__).parent / "fixtures/facts/vm_ports_bridge.json").read_text())
    ir = CATALOG.load("security_groups").microseg_ir
    chains = nftseg.desired(ir.validate({"bridge": "br-vm", "ports": args["ports"]}))
    printed = {c: [t for _, t in sorted(rules.items())] for c, rules in chains.items()}
    plan = CATALOG.plan("security_groups", args, dict(data, nft_microseg={}, microseg_declared={},
                                                      br_nf_call={"ipv4": "1", "ipv6": "1"},
                                                      vm_attach=None))  # fmt: skip
    written = [s for s in plan["steps"] if s[0] == "file"]
    assert [s[1] for s in written] == ["write " + DOCUMENT]  # the document, after the rules
    data.update(nft_microseg=printed if table else {}, vm_attach=None,
                br_nf_call={"ipv4": "1", "ipv6": "1"},
                microseg_declared={DOCUMENT: written[0].body} if document else {})  # fmt: skip
    return data


def test_each_host_is_sent_the_groups_and_its_own_vms_to_keep():
    args = expand(GROUPS)
    declared = args["kvm2"]["declaration"]  # the groups as checked (defaults filled in)
    assert [g["name"] for g in declared["groups"]] == ["web", "db", "mgmt"]
    assert declared["groups"][0]["egress"][0]["action"] == "allow"
    assert declared["vms"] == VMS["kvm2"]
    assert args["kvm3"]["declaration"]["vms"] == []


def test_a_secret_in_a_vms_metadata_is_never_sent_to_be_kept():
    """The declaration is written on the host (and read back by snapshot): a value from a
    secret variable goes as *** (membership is resolved on the controller with it)."""
    from vnetctl import secrets

    secrets.registry().pin("s3cret-tier")  # as a vault's value: planning keeps it
    try:
        db = dict(VMS["kvm2"][0], metadata={"tier": "s3cret-tier"})
        args = expand_with(GROUPS, dict(VMS, kvm2=[db]))["kvm2"]
    finally:
        secrets.registry().reset()
    assert "s3cret-tier" not in json.dumps(args["declaration"])
    assert args["declaration"]["vms"][0]["metadata"] == {"tier": "***"}


def test_applied_it_plans_nothing_and_a_removed_document_is_drift():
    args = expand(GROUPS)["kvm2"]
    assert CATALOG.plan("security_groups", args, facts_after(args))["steps"] == []
    again = CATALOG.plan("security_groups", args, facts_after(args, document=False))
    assert [s[1] for s in again["steps"]] == ["write " + DOCUMENT]


def test_snapshot_declares_the_groups_and_vms_the_document_keeps():
    args = expand(GROUPS)["kvm2"]
    (params,) = CATALOG.snapshot("security_groups", CATALOG.facts(facts_after(args)))
    assert params == {
        "name": "app",
        "bridge": "br-vm",
        "vms": VMS["kvm2"],
        "groups": args["declaration"]["groups"],
    }


def test_a_table_unlike_its_document_is_drift_not_written_back():
    args = expand(GROUPS)["kvm2"]
    (params,) = CATALOG.snapshot("security_groups", CATALOG.facts(facts_after(args, table=False)))
    assert "differ from the policy its declaration compiles to" in params["drift"]
    assert "chain in_525400000031" in params["drift"]
    notes: dict[str, str] = {}
    out = asyncio.run(snapshot_groups(Expansion(None, None, unchecked=notes),
                                      {"kvm2": [("security_groups", params)]}))  # fmt: skip
    assert out == {"kvm2": []} and "not written back" in notes["kvm2"]


def test_a_drifted_hosts_vms_stay_members_of_the_other_hosts_policy():
    """kvm2's table was changed: its task is left out, its VMs are not (kvm1's rules
    name db-1): kvm1's play alone resolves to the rules kvm1 had."""
    before = expand(GROUPS)
    clean = CATALOG.snapshot("security_groups", CATALOG.facts(facts_after(before["kvm1"])))
    drifted = CATALOG.snapshot(
        "security_groups", CATALOG.facts(facts_after(before["kvm2"], table=False))
    )
    tasks = {"kvm1": [("security_groups", p) for p in clean],
             "kvm2": [("security_groups", p) for p in drifted]}  # fmt: skip
    out = asyncio.run(snapshot_groups(Expansion(None, None, unchecked={}), tasks))
    (plays,) = [p for p in build_playbook(CATALOG, out) if p["tasks"]]
    assert plays["hosts"] == "kvm1"
    task = plays["tasks"][0]["security_groups"]
    assert ("kvm2", "db-1") in [(v["host"], v["name"]) for v in task["vms"]]
    after = expand_play("kvm1", task)
    assert after["kvm1"]["ports"] == before["kvm1"]["ports"]


def test_the_snapshot_play_spans_the_hosts_and_resolves_to_the_same_policy():
    """Snapshot of kvm1 and kvm2 (each a different `vms`): one play of both, every VM
    with its `host`; expanded again, each host is sent the ports it had."""
    before = expand(GROUPS)
    tasks = {h: [("linux_bridge", {"name": "br-" + h})] + [
        ("security_groups", p)
        for p in CATALOG.snapshot("security_groups", CATALOG.facts(facts_after(before[h])))]
        for h in ("kvm1", "kvm2")}  # fmt: skip
    tasks = asyncio.run(snapshot_groups(Expansion(None, None, unchecked={}), tasks))
    plays = build_playbook(CATALOG, tasks)
    assert [p["hosts"] for p in plays] == ["kvm1", "kvm2", "kvm1,kvm2"]
    (task,) = plays[-1]["tasks"]
    vms = task["security_groups"]["vms"]
    assert [(v["host"], v["name"]) for v in vms] == [("kvm1", "web-1"), ("kvm1", "mgmt-1"),
                                                     ("kvm2", "db-1")]  # fmt: skip
    after = expand_with_vms(task["security_groups"]["groups"], vms)
    for host in ("kvm1", "kvm2"):
        assert after[host]["ports"] == before[host]["ports"]


def expand_with_vms(groups, vms):
    """expand() with one `vms` list for every host (as a snapshot writes it)."""
    return expand_with(groups, {h: vms for h in VMS})


def expand_play(hosts, args):
    """The task `args` of a play on `hosts` (no inventory `vms`), expanded."""
    import tests.unit.test_microseg_resolve as resolve_tests

    inventory = build_inventory(resolve_tests.INVENTORY, "inv.yml")
    task = {"name": "groups", "security_groups": args}
    book = parse_playbook([{"hosts": hosts, "tasks": [task]}], "book.yml", CATALOG)
    plans = plan_playbook(book, inventory, CATALOG)

    async def no_libvirt(hosts):
        return {h: {} for h in hosts}

    plans = asyncio.run(expand_fleet(Expansion(RunContext(CATALOG, inventory), no_libvirt), plans))
    return {h: ts[0].args for h, ts in plans[0].tasks.items()}


def expand_with(groups, vms_by_host):
    import tests.unit.test_microseg_resolve as resolve_tests

    saved = resolve_tests.INVENTORY
    hosts = saved["all"]["children"]["kvm"]["hosts"]
    resolve_tests.INVENTORY = {"all": {"children": {"kvm": {"hosts": {
        h: dict(v, vms=vms_by_host[h]) for h, v in hosts.items()}}}}}  # fmt: skip
    try:
        return expand(groups)
    finally:
        resolve_tests.INVENTORY = saved


def drift_of(vms_by_host):
    """The changes kvm2 reads as drift against the fleet `vms_by_host`, after the
    policy of VMS was applied."""
    applied = facts_after(expand(GROUPS)["kvm2"])
    args = expand_with(GROUPS, vms_by_host)["kvm2"]
    return {c["field"]: c for c in CATALOG.plan("security_groups", args, applied)["changes"]}


def test_a_peer_readdressed_on_another_host_names_the_stale_rule_on_this_one():
    """web-1 (kvm1) has another address: kvm2's db-1 rule from web is stale."""
    web = dict(VMS["kvm1"][0], addresses=["10.0.0.12"])
    changes = drift_of(dict(VMS, kvm1=[web, VMS["kvm1"][1]]))
    stale = changes["declared.ports.db-1.ingress"]
    assert [r["peers"] for r in stale["before"] if r["id"] == "db/0"] == [["10.0.0.11/32"]]
    assert [r["peers"] for r in stale["after"] if r["id"] == "db/0"] == [["10.0.0.12/32"]]
    (rule,) = [c for f, c in changes.items() if f.startswith("chains.in_525400000031")]
    assert "ip saddr 10.0.0.11 tcp dport 5432" in rule["before"] and "db/0-v4" in rule["before"]


def test_a_vm_no_longer_selected_is_named_with_the_groups_it_left():
    db = dict(VMS["kvm2"][0], port_group="other")
    changes = drift_of(dict(VMS, kvm2=[db]))
    left = changes["declared.vms.db-1.member_of"]
    assert left["before"] == ["db"] and left["after"] == []
