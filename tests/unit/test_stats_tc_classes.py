"""HTB class counters in `vnetctl stats`: read by the shaper's own parser from what
iproute2 6.1 prints for `tc -j -s -d class show` (text: htb has no JSON there), named by
the classes a playbook declares through traffic_shaping's own class ids, exported as
`vnetctl_tc_class_*` with a `class` label.

fixtures/tc/overloaded.class-stats.txt is tc's output on this machine's iproute2 after
50 Mbit/s of UDP were bridged through a device whose class 1:a4ff is capped at 10."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jsonschema
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.catalog import Catalog
from vnetctl.playbook.render import HostTask
from vnetctl.stats.declared import declared, interface_names, is_declared, name_classes
from vnetctl.stats.formats import render
from vnetctl.stats.gather import StatsReport

CATALOG = Catalog()
CATALOG.host_lib()
tc = sys.modules["vnet_tc"]
net_stats = CATALOG.load("net_stats")
FIXTURES = Path(__file__).parent / "fixtures"
OVERLOADED = (FIXTURES / "tc" / "overloaded.class-stats.txt").read_text()
SCHEMA = Path(__file__).parents[2] / "vnetctl" / "output" / "schema" / "stats.schema.json"
CLASSES = [{"name": "management", "reservation": 50, "match": [{"protocol": "tcp", "dport": 22}]},
           {"name": "storage", "limit": 10, "match": [{"protocol": "udp"}]},
           {"name": "vm"}]  # fmt: skip


def plan(host: str, *tasks: tuple[str, dict]) -> SimpleNamespace:
    rows = [HostTask(i, module, module, args, None) for i, (module, args) in enumerate(tasks)]
    return SimpleNamespace(hosts=[host], tasks={host: rows})


def test_the_text_iproute2_61_prints_reads_with_its_counters():
    classes = tc.parse_classes(OVERLOADED)
    assert classes["1:a4ff"]["stats"] == {
        "bytes": 2509206, "packets": 1685, "drops": 5950, "overlimits": 1683,
        "backlog": 1482550, "qlen": 995}  # fmt: skip
    assert classes["1:a4ff"]["ceil"] == 10000 and classes["1:2"]["stats"]["drops"] == 0
    assert classes["1:1"]["stats"]["packets"] == 1718 and classes["1:1"]["parent"] is None


def test_json_counters_read_as_the_text_ones():
    """iproute2 versions that print htb as JSON put print_tcstats2_attr's keys beside the
    class's own (and some nest them under "stats"): the same counters."""
    text = tc.parse_classes(OVERLOADED)
    for nested in (False, True):
        items = []
        for cid, cls in text.items():
            counters = {k: cls["stats"][k] for k in ("bytes", "packets", "drops", "overlimits",
                                                     "backlog", "qlen")}  # fmt: skip
            item = {"class": "htb", "handle": cid, "rate": cls["rate"] * 125,
                    "ceil": cls["ceil"] * 125, "requeues": 0}  # fmt: skip
            item.update({"root": True} if cls["parent"] is None else {"parent": cls["parent"]})
            item.update({"stats": counters} if nested else counters)
            items.append(item)
        parsed = tc.parse_classes(json.dumps(items))
        assert {c: v["stats"] for c, v in parsed.items()} == {
            c: v["stats"] for c, v in text.items()}  # fmt: skip


def test_the_module_reports_each_class_by_device_and_id():
    fact = {"classes": {"eth1": tc.parse_classes(OVERLOADED), "eth2": {}}}
    rows = net_stats.tc_classes(fact)
    assert set(rows) == {"eth1"} and set(rows["eth1"]) == {"1:1", "1:2", "1:a4ff"}
    assert rows["eth1"]["1:a4ff"] == {"parent": "1:1", "sent_bytes": 2509206,
                                      "sent_packets": 1685, "drops": 5950, "overlimits": 1683,
                                      "backlog_bytes": 1482550, "backlog_packets": 995}  # fmt: skip
    assert net_stats.tc_classes(None) == {}


def ids_of(classes: list[dict]) -> dict[str, str]:
    minors = CATALOG.ask("traffic_shaping", "class_names", {"classes": classes})
    return {name: f"1:{minor:x}" for minor, name in minors.items()}


def test_classes_are_named_by_the_declaration_and_only_declared_ones_are_kept():
    ids = ids_of(CLASSES)
    rows = {"1:1": {"parent": None, "drops": 0}, ids["storage"]: {"parent": "1:1", "drops": 9},
            ids["vm"]: {"parent": "1:1", "drops": 0},
            "1:77": {"parent": "1:1", "drops": 1}}  # fmt: skip
    found = {"eth1": rows, "eth2": {"1:2": {"parent": "1:1", "drops": 0}}}
    shaping = {"name": "eth1", "speed": 100, "classes": CLASSES}
    mine = declared([plan("hv1", ("traffic_shaping", shaping))], CATALOG)["hv1"]
    named = name_classes(CATALOG, found, mine)
    assert set(named) == {"eth1"}  # eth2 is shaped, but not by this playbook
    assert set(named["eth1"]) == {"storage", "vm"}  # management has no class there yet
    assert named["eth1"]["storage"] == {"parent": "1:1", "drops": 9, "id": ids["storage"]}
    assert ids["vm"] == "1:2"  # the class without match is the default
    everything = name_classes(CATALOG, found, None)  # no playbook: every class by its id
    assert set(everything["eth1"]) == {"1:1", ids["storage"], "1:2", "1:77"}


def test_an_ingress_limit_declares_its_ifbs_default_class():
    mine = declared([plan("hv1", ("traffic_shaping", {"name": "vnet0", "ingress_limit": 30}))],
                    CATALOG)["hv1"]  # fmt: skip
    assert mine.classes["ifbvnet0"] == {2: "default"} and "ifbvnet0" in mine.ports
    assert mine.classes["vnet0"] == {2: "default"}


def test_the_ports_a_playbook_declares_are_every_interface_name_of_its_tasks():
    tasks = [("bond", {"name": "bond0", "members": ["eth1", "eth2"]}),
             ("linux_bridge", {"name": "br-vm", "ports": ["bond0", "vnet3"]}),
             ("ovs_bridge", {"name": "br-ovs", "ports": [{"name": "vnet7"}]}),
             ("vlan", {"name": "eth1.10", "parent": "eth1", "id": 10}),
             ("port_group", {"name": "web", "bridge": "br-vm", "ports": ["vnet1*"]})]  # fmt: skip
    mine = declared([plan("hv1", *tasks)], CATALOG)["hv1"]
    assert mine.ports == {"bond0", "eth1", "eth2", "br-vm", "vnet3", "br-ovs", "vnet7",
                          "eth1.10", "vnet1*"}  # fmt: skip
    assert is_declared("vnet12", mine) and not is_declared("vnet2", mine)
    assert interface_names(CATALOG["route"], {"dest": "10.0.0.0/8", "dev": "eth9"}) == {"eth9"}


def report() -> StatsReport:
    classes = {"eth1": {"storage": {"id": "1:a4ff", "parent": "1:1", "sent_bytes": 2509206,
                                    "sent_packets": 1685, "drops": 5950, "overlimits": 1683,
                                    "backlog_bytes": 1482550, "backlog_packets": 995}}}  # fmt: skip
    host = {
        "ports": {},
        "ovs": None,
        "vxlan_peers": {},
        "tc_classes": classes,
        "ovs_bridges": None,
        "ovs_bonds": None,
    }
    return StatsReport("inventory/prod.yml", 1_790_000_000.0, 0.5, hosts={"hv1": host})


def test_class_counters_in_prometheus_json_and_text():
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(render(report(), "prometheus"))
               for s in f.samples}  # fmt: skip
    labels = (("check", "prod"), ("class", "storage"), ("classid", "1:a4ff"),
              ("device", "eth1"), ("host", "hv1"))  # fmt: skip
    assert samples[("vnetctl_tc_class_drops_total", labels)] == 5950
    assert samples[("vnetctl_tc_class_overlimits_total", labels)] == 1683
    assert samples[("vnetctl_tc_class_sent_bytes_total", labels)] == 2509206
    assert samples[("vnetctl_tc_class_backlog_packets", labels)] == 995
    jsonschema.validate(json.loads(render(report(), "json")), json.loads(SCHEMA.read_text()))
    line = next(ln for ln in render(report(), "text").splitlines() if "storage" in ln)
    assert line.split() == ["eth1", "storage", "1:a4ff", "2509206", "1685", "5950", "1683", "995p"]
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup.sh installs Debian's prometheus"
    done = subprocess.run([promtool, "check", "metrics"], input=render(report(), "prometheus"),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done
