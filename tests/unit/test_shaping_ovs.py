"""traffic_shaping on an Open vSwitch bond (`ovs: true`, issue 26), beyond the planned
commands of fixtures/plans/traffic_shaping_ovs.yml: the facts it reads from OVSDB, the
state's NIOC words by member, and the boot configuration (the oneshot unit's tc lines
for every member; the QoS row is OVSDB's, which persists by itself)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vnetctl.catalog import Catalog

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = Catalog()
host = CATALOG.host_lib()
persist = sys.modules["vnet_persist"]
tc_ovs = sys.modules["vnet_tc_ovs"]
BOND = {
    "name": "uplink",
    "ovs": True,
    "speed": 100,
    "classes": [
        {"name": "storage", "shares": 75, "match": [{"vlan": 10}]},
        {"name": "migration", "limit": 30, "match": [{"vlan": 20}]},
        {"name": "vm", "shares": 25},
    ],
}


def facts(name: str):
    return host.Facts(json.loads((FIXTURES / "facts" / name).read_text()))


def test_ovsdb_rows_read_as_ports_with_their_interfaces_and_qos_type():
    tables = {
        "Port": [
            {"name": "uplink", "interfaces": ["set-a", "set-b"], "qos": "q1"},
            {"name": "p10", "interfaces": "i10", "qos": []},
        ],
        "QoS": [{"_uuid": "q1", "type": "linux-noop"}],
        "Interface": [
            {"_uuid": "set-a", "name": "eth2"},
            {"_uuid": "set-b", "name": "eth1"},
            {"_uuid": "i10", "name": "p10"},
        ],
    }
    assert tc_ovs.parse(tables) == {
        "uplink": {"interfaces": ["eth1", "eth2"], "qos": "linux-noop"},
        "p10": {"interfaces": ["p10"], "qos": None},
    }


def test_each_member_reads_in_nioc_words():
    module = CATALOG.load("traffic_shaping")
    state = module.read(BOND, facts("shaping_ovs_bond_nioc.json"))
    assert state["ovs_qos"] == "linux-noop" and sorted(state["members"]) == ["eth1", "eth2"]
    for member in state["members"].values():
        migration = member["classes"]["migration"]
        assert (migration["reservation"], migration["limit"], migration["shares"]) == (None, 30, 50)
        assert "ceil" not in migration and "quantum" not in migration
        assert member["classes"]["storage"]["filters"] == ["pref 10 802.1q vlan 10 bpf"]


def test_boot_runs_the_same_tc_lines_for_every_member(tmp_path):
    module = CATALOG.load("traffic_shaping")
    known = facts("shaping_ovs_bond.json")
    planned = host.plan(module, BOND, known)
    units = persist.Units(host.resource_id(module, planned["params"]), str(tmp_path))
    module.persist(planned["params"], planned["desired"], known, units)
    (path,) = [p for p in units.files if p.endswith(".tc")]
    text = units.files[path]
    assert "# device: eth1\n# device: eth2\n" in text
    lines = [row for row in text.splitlines() if row and not row.startswith("#")]
    tc_steps = [" ".join(s)[len("tc ") :] for s in planned["steps"] if s[0] == "tc"]
    assert lines == tc_steps and len(lines) == 20  # the run's tc steps, ovs-vsctl's not
    assert not [p for p in units.files if p.endswith(".network") or ".network.d/" in p]


def test_snapshot_writes_the_bond_back_as_one_ovs_task():
    from vnetctl.fleet.shaping.snapshot import device_tasks  # noqa: PLC0415

    data = json.loads((FIXTURES / "facts" / "shaping_ovs_bond_nioc.json").read_text())
    (task,), left_out = device_tasks(CATALOG, data)
    assert left_out == [] and (task["name"], task["ovs"], task["speed"]) == ("uplink", True, 100)
    assert [(c["name"], c.get("limit"), c["shares"]) for c in task["classes"]] == [
        ("class-3c84", None, 75), ("class-e092", 30, 50), ("default", None, 25)]  # fmt: skip
    drifted = json.loads((FIXTURES / "facts" / "shaping_ovs_bond_drifted.json").read_text())
    tasks, left_out = device_tasks(CATALOG, drifted)  # members that differ: device by device
    assert [t["name"] for t in tasks] == ["eth1"] and left_out == ["eth2"]  # eth2: a cburst
    # no limit gives at its hand-set ceil
