"""Drift's `not persisted` kind: the running state matches the declaration but the boot
configuration vnetctl writes does not (a file missing, different or left over). From a
check run's result to an item, in every format, and in the history (a history written
before the kind existed is upgraded in place)."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET

import jsonschema
from drift_samples import T0, full_report, item
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.drift import formats
from vnetctl.drift.classify import task_items
from vnetctl.drift.formats.json_format import schema
from vnetctl.drift.history import SCHEMA_VERSION, TABLES, History
from vnetctl.drift.report import DriftReport, HostDrift, HostState, Kind
from vnetctl.runner.results import Status, TaskResult

NETDEV = "etc/systemd/network/10-vnetctl-br-vm.netdev"
PORT = "etc/systemd/network/10-vnetctl-eth1.network.d/10-vnetctl-bridge-br-vm.conf"


def checked(files: list[dict], changes: list[dict] | None = None) -> TaskResult:
    """A check-mode result as the host sends it: the kernel converged (no changes), the
    boot configuration not."""
    raw = {"changed": True, "msg": "would write the boot configuration (2 files)",
           "resource": "bridge br-vm", "changes": changes or [],
           "persist": {"mode": "networkd", "why": "declared", "files": files}}  # fmt: skip
    task = type("T", (), {"index": 0, "name": "VM bridge", "module": "linux_bridge"})
    return TaskResult.from_module("h1", "site", task, raw)


def test_a_file_missing_different_or_left_over_is_one_not_persisted_item_each():
    result = checked([
        {"path": NETDEV, "before": "STP=no\n", "after": "STP=yes\n"},
        {"path": PORT, "before": None, "after": "Bridge=br-vm\n"},
        {"path": "etc/vnetctl/boot.d/10-vnetctl-bridge-br-vm.tc", "before": "x\n",
         "after": None},
    ])  # fmt: skip
    assert result.status is Status.CHANGED
    items = task_items(result)
    assert [(i.kind, i.field, i.declared, i.actual) for i in items] == [
        (Kind.NOT_PERSISTED, "/" + NETDEV, "STP=yes\n", "STP=no\n"),
        (Kind.NOT_PERSISTED, "/" + PORT, "Bridge=br-vm\n", None),
        (Kind.NOT_PERSISTED, "/etc/vnetctl/boot.d/10-vnetctl-bridge-br-vm.tc", None, "x\n"),
    ]
    assert {i.resource for i in items} == {"bridge br-vm"}


def test_running_drift_and_boot_drift_are_both_reported():
    result = checked([{"path": PORT, "before": None, "after": "Bridge=br-vm\n"}],
                     [{"field": "mtu", "before": 1500, "after": 9000}])  # fmt: skip
    assert [i.kind for i in task_items(result)] == [Kind.DIFFERENT, Kind.NOT_PERSISTED]


def test_a_file_keeps_its_key_while_its_content_changes():
    one = item(kind=Kind.NOT_PERSISTED, field="/" + NETDEV, declared="a\n", actual="b\n")
    two = item(kind=Kind.NOT_PERSISTED, field="/" + NETDEV, declared="a\n", actual="c\n")
    assert one.key == two.key


def report() -> DriftReport:
    out = full_report()
    out.hosts[1].items += [
        item(kind=Kind.NOT_PERSISTED, field="/" + PORT, declared="Bridge=br-vm\n", actual=None),
        item(kind=Kind.NOT_PERSISTED, field="/" + NETDEV, declared="[NetDev]\nName=<br>\n",
             actual="[NetDev]\n"),
    ]  # fmt: skip
    return out


def test_every_format_shows_the_kind():
    doc = json.loads(formats.render(report(), "json"))
    jsonschema.validate(doc, schema())
    assert doc["summary"]["items"]["not persisted"] == 2
    kinds = [i["kind"] for h in doc["hosts"] for i in h["items"]]
    assert kinds.count("not persisted") == 2

    text = formats.render(report(), "text")
    assert "2 not persisted" in text
    assert f"not persisted  bridge br-vm  /{PORT}: missing from the boot configuration" in text
    assert f"/{NETDEV}: the boot configuration differs from the declaration" in text

    html = formats.render(report(), "html")
    assert html.count('<tr class="not_persisted">') == 2
    assert "Name=&lt;br&gt;" in html and "<b>2</b>not persisted" in html

    root = ET.fromstring(formats.render(report(), "junit"))
    failures = [f.get("message") for f in root.iter("failure")]
    assert any(f"not persisted: /{PORT}: missing from the boot configuration" in m
               for m in failures)  # fmt: skip

    exposition = formats.render(report(), "prometheus")
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    samples = {(s.labels["host"], s.labels["kind"]): s.value
               for s in families["vnetctl_drift_items"].samples}  # fmt: skip
    assert samples[("h2", "not_persisted")] == 2 and samples[("h1", "not_persisted")] == 0


def _only(items):
    out = DriftReport("p.yml", "i.yml", started=T0, duration=1)
    out.hosts.append(HostDrift("h1", HostState.DRIFTED, resources=1, items=items))
    return out


def test_the_history_counts_and_keeps_not_persisted_items(tmp_path):
    lost = item("h1", kind=Kind.NOT_PERSISTED, field="/" + PORT, declared="x\n", actual=None)
    with History(tmp_path / "h.sqlite") as history:
        history.record(_only([lost]), "c")
        (run,) = history.runs("c")
        assert run.items == {"missing": 0, "different": 0, "extra": 0, "not persisted": 1}
        (back,) = history.items(run.id)
        assert (back.kind, back.field, back.declared, back.actual) == (
            Kind.NOT_PERSISTED, "/" + PORT, "x\n", None)  # fmt: skip
        later = _only([])
        later.started = T0 + 60
        history.record(later, "c")
        assert [i.field for i in later.resolved] == ["/" + PORT]


def test_a_history_from_before_the_kind_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    version_1 = TABLES.replace(
        ",\n    not_persisted INTEGER NOT NULL DEFAULT 0,\n    shard TEXT", ""
    )
    db.executescript(version_1.replace("    resources INTEGER NOT NULL DEFAULT 0,\n", ""))
    db.execute("INSERT INTO runs (check_id, label, playbook, inventory, started, duration, "
               "exit_code, hosts, missing, different, extra, inconsistent, resolved) VALUES "
               "('c', '', 'p', 'i', 1, 1, 2, 1, 1, 0, 0, 0, 0)")  # fmt: skip
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with History(path) as history:
        assert history.runs("c")[0].items["not persisted"] == 0
        history.record(_only([item("h1", kind=Kind.NOT_PERSISTED, field="/x")]), "c")
        assert history.runs("c")[0].items["not persisted"] == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
