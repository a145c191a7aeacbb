"""`vnetctl snapshot` writes security groups back (issue 30): on two lab hosts with the
three-tier policy of test_microseg_lab.py (its fixture and helpers), the snapshot's
playbook, run after the policy was removed, writes the same nftables table on each
host; a table changed by hand is named in the snapshot and not written back."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.integration import test_microseg_lab as microseg
from tests.integration.microseg_matrix import run_json
from tests.integration.test_microseg_lab import play, status
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab
the_lab = microseg.lab  # its module's two-host lab, and its VM-like guests cleaned up

TABLE = ["nft", "list", "table", "inet", "vnetctl_microseg"]
PLACEMENT = ("web-1", "app-1", "mgmt-1"), ("db-1",)


def tables(lab) -> dict[str, str]:
    return {h: host_exec(lab.name, h, TABLE).stdout for h in lab.host_names}


def snapshot(tmp_path, name) -> tuple[int, str]:
    out = tmp_path / name
    code = main(["snapshot", "-i", str(tmp_path / "inventory.yml"), "-o", str(out)])
    return code, out.read_text()


def policy_task(text: str) -> tuple[dict, dict]:
    plays = yaml.safe_load(text)
    found = [(p, t) for p in plays for t in p["tasks"] if "security_groups" in t]
    assert len(found) == 1, text
    return found[0]


def test_a_snapshot_run_again_writes_the_same_table(the_lab, tmp_path):
    lab = the_lab
    h1, h2 = lab.host_names
    placement = {h1: list(PLACEMENT[0]), h2: list(PLACEMENT[1])}
    assert play(lab, tmp_path, placement)["code"] == 0
    before = tables(lab)
    assert all("chain in_" in t for t in before.values()), before

    code, text = snapshot(tmp_path, "snap.yml")
    assert code == 0 and "INCOMPLETE" not in text, text
    own_play, task = policy_task(text)
    assert sorted(own_play["hosts"].split(",")) == sorted([h1, h2])
    vms = task["security_groups"]["vms"]
    assert sorted((v["host"], v["name"]) for v in vms) == sorted(
        (h, v) for h, names in placement.items() for v in names
    )

    # the policy removed (state: absent), then the snapshot alone puts it back
    absent = [dict(own_play, tasks=[{"name": "gone", "security_groups": dict(
        task["security_groups"], state="absent")}])]  # fmt: skip
    (tmp_path / "absent.yml").write_text(yaml.safe_dump(absent))
    inventory = str(tmp_path / "inventory.yml")
    assert run_json(["run", str(tmp_path / "absent.yml"), "-i", inventory])["code"] == 0
    assert all(not t for t in tables(lab).values()), tables(lab)
    doc = run_json(["run", str(tmp_path / "snap.yml"), "-i", inventory])
    assert doc["code"] == 0, doc
    assert tables(lab) == before
    again = run_json(["run", str(tmp_path / "snap.yml"), "-i", inventory, "--check"])
    assert status(again, h1) == status(again, h2) == "ok", again


def test_a_table_changed_by_hand_is_named_not_written_back(the_lab, tmp_path):
    lab = the_lab
    h1, h2 = lab.host_names
    placement = {h1: list(PLACEMENT[0]), h2: list(PLACEMENT[1])}
    assert play(lab, tmp_path, placement)["code"] == 0
    listed = host_exec(lab.name, h2, ["nft", "-a", *TABLE[1:]]).stdout
    handle = next(line.rsplit(" ", 1)[1] for line in listed.splitlines()
                  if "tcp dport 5432 accept" in line)  # fmt: skip
    chain = next(line.split()[1] for line in listed.splitlines()
                 if line.strip().startswith("chain in_"))  # fmt: skip
    edit = ["nft", "replace", "rule", "inet", "vnetctl_microseg", chain, "handle", handle,
            "tcp", "dport", "5433", "accept"]  # fmt: skip
    assert host_exec(lab.name, h2, edit).returncode == 0
    try:
        _, text = snapshot(tmp_path, "drift.yml")
        said = [line for line in text.splitlines() if line.startswith("# INCOMPLETE: " + h2)]
        assert said and "security groups 'three-tier'" in said[0] and chain in said[0], text
        own_play, task = policy_task(text)
        assert own_play["hosts"] == h1  # h2's VMs stay: h1's rules name them
        assert (h2, "db-1") in [(v["host"], v["name"]) for v in task["security_groups"]["vms"]]
    finally:
        assert play(lab, tmp_path, placement)["code"] == 0


def test_drift_names_the_stale_rule_of_a_peer_readdressed_on_the_other_host(the_lab, tmp_path):
    """app-1 (on h1) is given another address: h2's table still names the old one in
    db's rule from app; drift reports h2 with the VM and its rule."""
    lab = the_lab
    h1, h2 = lab.host_names
    placement = {h1: list(PLACEMENT[0]), h2: list(PLACEMENT[1])}
    assert play(lab, tmp_path, placement)["code"] == 0
    saved = microseg.VMS["app-1"]
    microseg.VMS["app-1"] = dict(saved, addresses=["10.30.0.29", "fd30::29"])
    try:
        play(lab, tmp_path, placement, "--check")  # writes the inventory with it
        doc = run_json(["drift", str(tmp_path / "play.yml"), "-i", str(tmp_path / "inventory.yml")])
    finally:
        microseg.VMS["app-1"] = saved
    fields = {(i["host"], i["field"]) for i in items(doc)}
    assert (h2, "declared.ports.db-1.ingress") in fields, doc
    stale = next(i for i in items(doc) if i["host"] == h2 and i["field"].startswith("chains.in_"))
    assert "10.30.0.21" in json.dumps(stale) and "db/0-v4" in json.dumps(stale), stale
    assert play(lab, tmp_path, placement)["code"] == 0


def items(doc) -> list[dict]:
    """Drift's items, each with its host."""
    return [dict(i, host=h["host"]) for h in doc["hosts"] for i in h.get("items") or []]
