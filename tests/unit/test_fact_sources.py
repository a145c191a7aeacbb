"""Fact sources declared by modules: gathered lazily, once per play (until a change
refreshes them), batched where the tool allows, recorded under the same names."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
host = CATALOG.host_lib()
FIXTURES = Path(__file__).parent / "fixtures" / "facts"


class Runner:
    """A host whose commands answer from `outputs` (argv prefix -> text); counts calls."""

    def __init__(self, outputs):
        self.outputs, self.calls = outputs, []

    def __call__(self, argv, stdin=None):
        self.calls.append(list(argv))
        for prefix, output in self.outputs.items():
            if " ".join(argv).startswith(prefix):
                if isinstance(output, Exception):
                    raise output
                return output
        raise host.ModuleError(f"{argv[0]} failed: no such command here")


def module(**facts):
    return SimpleNamespace(ARGUMENT_SPEC={}, FACTS=facts)


def test_a_whole_host_source_is_gathered_once_until_refreshed():
    runner = Runner({"cat /proc/sys/net/ipv4/ip_forward": "1\n"})
    flag = host.command(["cat", "/proc/sys/net/ipv4/ip_forward"], parse=lambda out: int(out))
    facts = host.Facts.gather(runner, modules=[module(ip_forward=flag)])
    assert runner.calls == []  # lazily: nothing before a module asks
    assert facts.get("ip_forward") == 1 and facts.get("ip_forward") == 1
    assert len(runner.calls) == 1
    facts.refresh()
    assert facts.get("ip_forward") == 1 and len(runner.calls) == 2


def test_one_tc_qdisc_show_covers_every_device():
    qdiscs = [{"kind": "fq_codel", "dev": "eth0"}, {"kind": "htb", "dev": "tap1"}]
    runner = Runner({"tc -j -s qdisc show": json.dumps(qdiscs)})

    def by_device(output):
        out = {}
        for qdisc in host.parse_json(output):
            out.setdefault(qdisc["dev"], []).append(qdisc["kind"])
        return out

    source = host.command(["tc", "-j", "-s", "qdisc", "show"], parse=by_device)
    facts = host.Facts.gather(runner, modules=[module(qdiscs=source)])
    assert facts.get("qdiscs")["tap1"] == ["htb"] and facts.get("qdiscs")["eth0"] == ["fq_codel"]
    assert runner.calls == [["tc", "-j", "-s", "qdisc", "show"]]


def test_a_per_device_source_runs_once_per_device_asked_for():
    runner = Runner({"tc -j class show dev eth0": "[]", "tc -j class show dev tap1": '[{"a": 1}]'})
    classes = host.per_device(["tc", "-j", "class", "show", "dev", "{dev}"])
    facts = host.Facts.gather(runner, modules=[module(classes=classes)])
    assert facts.get("classes", "tap1") == [{"a": 1}] and facts.get("classes", "eth0") == []
    assert facts.get("classes", "tap1") == [{"a": 1}]
    assert [c[-1] for c in runner.calls] == ["tap1", "eth0"]
    with pytest.raises(host.ModuleError, match="is not a valid interface name"):
        facts.get("classes", "-v")  # a device name is checked before it reaches a command
    with pytest.raises(ValueError, match="no {dev}"):
        host.per_device(["tc", "-j", "class", "show"])


def test_ovsdb_sources_of_every_module_are_read_by_one_ovs_vsctl_columns_merged():
    bonds = host.ovsdb(
        {"Port": ["name", "bond_mode"], "Open_vSwitch": ["ovs_version"]},
        parse=lambda tables: {p["name"]: p["bond_mode"] for p in tables["Port"]},
    )
    version = host.ovsdb(
        {"Open_vSwitch": ["ovs_version"]}, lambda t: t["Open_vSwitch"][0]["ovs_version"]
    )
    # OVSDB's JSON (ovs-vsctl --data=json): ["uuid", id], ["set", [...]], ["map", [[k, v]]]
    documents = [
        {"headings": ["datapath_type", "name", "ports"],
         "data": [["", "br0", ["set", [["uuid", "p1"], ["uuid", "p2"]]]],
                  ["netdev", "br1", ["uuid", "p3"]]]},
        {"headings": ["_uuid", "external_ids", "name", "options", "type"],
         "data": [[["uuid", "i1"], ["map", [["vnetctl-mesh", "m"]]], "vx1",
                   ["map", [["remote_ip", "10.0.0.2"], ["key", "5"]]], "vxlan"]]},
        {"headings": ["ovs_version"], "data": [["3.1.0"]]},
        {"headings": ["_uuid", "bond_mode", "interfaces", "name", "protected"],
         "data": [[["uuid", "p1"], "balance-slb", ["set", []], "bond0", False],
                  [["uuid", "p2"], ["set", []], ["uuid", "i1"], "vx1", True],
                  [["uuid", "p3"], ["set", []], ["set", []], "br1", False]]},
    ]  # fmt: skip
    runner = Runner({"ovs-vsctl": "\n".join(json.dumps(d) for d in documents) + "\n"})
    facts = host.Facts.gather(runner, modules=[module(bonds=bonds), module(ovs_version=version)])
    assert facts.get("bonds") == {"bond0": "balance-slb", "vx1": [], "br1": []}
    assert facts.get("ovs") == {
        "datapath": {"br0": "system", "br1": "netdev"},
        "bridges": {"br0": ["bond0", "vx1"], "br1": ["br1"]},
        "ports": {"bond0": [], "vx1": ["vx1"], "br1": []},
        "protected": ["vx1"],
        "interfaces": {
            "vx1": {"type": "vxlan", "options": {"remote_ip": "10.0.0.2", "key": "5"},
                    "external_ids": {"vnetctl-mesh": "m"}},
        },
    }  # fmt: skip
    assert facts.get("ovs_version") == "3.1.0"
    assert len(runner.calls) == 1
    argv = runner.calls[0]
    assert argv[:4] == ["ovs-vsctl", "--timeout=10", "--format=json", "--data=json"]
    assert " ".join(argv[4:]).split(" -- ")[1:] == [
        "--columns=_uuid,external_ids,name,options,type list Interface",
        "--columns=ovs_version list Open_vSwitch",
        "--columns=_uuid,bond_mode,interfaces,name,protected list Port",
    ]
    assert " ".join(argv[4:]).startswith("-- --columns=datapath_type,name,ports list Bridge")


def test_without_open_vswitch_every_ovsdb_fact_is_none_and_other_failures_are_errors():
    runner = Runner({})  # no command succeeds
    facts = host.Facts.gather(runner, modules=[])
    assert facts.ovs is None
    with pytest.raises(host.ModuleError, match="ip failed"):
        facts.get("links")
    optional = host.command(["ethtool", "-i", "eth0"], optional=True)
    facts = host.Facts.gather(runner, modules=[module(driver=optional)])
    assert facts.get("driver") is None


def test_undeclared_and_conflicting_sources_are_errors():
    facts = host.Facts.gather(Runner({}), modules=[])
    with pytest.raises(host.ModuleError, match="no fact source 'tc' is declared"):
        facts.get("tc")
    first, second = host.command(["tc", "-j", "qdisc", "show"]), host.command(["tc", "-j"])
    with pytest.raises(host.ModuleError, match="'tc' is declared twice, differently"):
        host.Facts.gather(Runner({}), modules=[module(tc=first), module(tc=second)])
    host.Facts.gather(Runner({}), modules=[module(tc=first), module(tc=first)])  # shared: fine


def test_recorded_facts_hold_every_source_under_its_name():
    data = json.loads((FIXTURES / "plain_host.json").read_text())
    data.update(ip_forward=0, classes={"eth1": [{"handle": "1:10"}]})
    facts = host.Facts(data)
    assert facts.get("ip_forward") == 0 and facts.get("classes", "eth1") == [{"handle": "1:10"}]
    assert facts.link("eth1")["mtu"] == 1500
    with pytest.raises(host.ModuleError, match="recorded facts have no 'classes' for eth2"):
        facts.get("classes", "eth2")
    with pytest.raises(host.ModuleError, match="recorded facts have no 'fdb'"):
        facts.get("fdb")


def test_as_dict_has_the_built_in_keys_and_every_declared_source():
    ip = {"ip -j -d link show": json.dumps([{"ifname": "lo"}, {"ifname": "eth0"}]),
          "ip -j addr show": "[]",
          "bridge -j fdb show": json.dumps([{"mac": "a", "dst": "10.0.0.2"}, {"mac": "b"}]),
          "tc -j class show dev": "[]", "cat": "1\n"}  # fmt: skip
    classes = host.per_device(["tc", "-j", "class", "show", "dev", "{dev}"])
    flag = host.command(["cat", "/proc/sys/net/ipv4/ip_forward"], parse=int)
    facts = host.Facts.gather(Runner(ip), modules=[module(classes=classes, ip_forward=flag)])
    data = facts.as_dict()
    assert list(data) == ["links", "addrs", "fdb", "ovs", "classes", "ip_forward"]
    assert data["fdb"] == [{"mac": "a", "dst": "10.0.0.2"}]  # remote VTEPs only, as before
    assert data["ovs"] is None and data["classes"] == {"eth0": [], "lo": []}
    assert data["ip_forward"] == 1
    again = host.Facts(json.loads(json.dumps(data)))  # what `vnetctl facts` prints, replayed
    assert again.get("classes", "eth0") == [] and again.link("eth0") == {"ifname": "eth0"}


def test_gather_finds_the_modules_loaded_in_the_process():
    """vnetctl's host process loads the play's modules, then gathers: their FACTS count."""
    mesh = CATALOG.load("vxlan_mesh")  # loaded, as the host process loads a play's modules
    mesh.FACTS = {"seam_probe": host.command(["true"], parse=str)}
    try:
        facts = host.Facts.gather(Runner({"true": "x"}))
        assert facts.get("seam_probe") == "x"
    finally:
        del mesh.FACTS
