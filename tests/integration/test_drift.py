"""`vnetctl drift` on the lab: drift induced by hand on real hosts, found with the exact
field and values in every format, remembered in the history, resolved once fixed."""

from __future__ import annotations

import ipaddress
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.cli.main import main
from vnetctl.drift.formats.json_format import schema
from vnetctl.lab import host_exec, start_sshd, stop_sshd

pytestmark = pytest.mark.lab

PLAYBOOK = str(Path(__file__).parent / "playbooks" / "drift.yml")
JUNIT_XSD = Path(__file__).parents[1] / "unit" / "fixtures" / "junit.xsd"
ZERO = "00:00:00:00:00:00"


@pytest.fixture
def drift_lab(lab3, fresh_hosts, tmp_path):
    """lab3 converged to PLAYBOOK, and a fresh history database."""
    inv = str(lab3.inventory_path)
    assert main(["run", PLAYBOOK, "-i", inv, "--format", "json"]) == 0
    return lab3, inv, tmp_path / "history.sqlite"


def drift(capsys, inv: str, db: Path, *extra: str) -> tuple[int, dict]:
    code = main(["drift", PLAYBOOK, "-i", inv, "--history", str(db), "--format", "json", *extra])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, schema())
    return code, doc


def items(doc: dict) -> set[tuple]:
    return {
        (i["host"], i["resource"], i["kind"], i["field"], json.dumps(i["declared"]),
         json.dumps(i["actual"]))
        for h in doc["hosts"] for i in h["items"]
    }  # fmt: skip


def sh(lab, host: str, script: str) -> None:
    run = host_exec(lab.name, host, ["sh", "-c", script])
    assert run.returncode == 0, run.stderr


def test_no_drift_exits_0_and_every_host_is_in_sync(drift_lab, capsys):
    lab, inv, db = drift_lab
    code, doc = drift(capsys, inv, db)
    assert code == 0, doc
    assert {h["state"] for h in doc["hosts"]} == {"in_sync"}
    assert all(h["resources"] == 3 for h in doc["hosts"])
    assert doc["summary"]["items"] == {"missing": 0, "different": 0, "extra": 0, "not persisted": 0}


def test_each_kind_of_drift_in_every_format_then_resolved_in_history(drift_lab, capsys, tmp_path):
    lab, inv, db = drift_lab
    h1, h2, h3 = lab.host_names
    peer = lab.host(h1).address
    stranger = str(ipaddress.ip_network(lab.subnet).network_address + 99)  # no lab host's
    sh(lab, h1, "ip link set dev eth2 mtu 1500")  # MTU changed
    sh(lab, h2, "ip link set dev eth1 nomaster")  # uplink removed from the bridge
    sh(lab, h2, "ip link add extra0 mtu 9000 type veth peer name extra0p mtu 9000")
    sh(lab, h2, "ip link set extra0 master br-vm")  # an extra port on the bridge
    sh(lab, h3, f"bridge fdb del {ZERO} dev vxlan100 dst {peer}")  # a peer deleted
    sh(lab, h3, f"bridge fdb append {ZERO} dev vxlan100 dst {stranger}")

    reports = {fmt: tmp_path / f"drift.{fmt}" for fmt in ("text", "html", "junit", "prometheus")}
    extra = [f"--report={fmt}={path}" for fmt, path in reports.items()]
    code, doc = drift(capsys, inv, db, *extra)
    assert code == 2, doc
    expected = {
        (h1, "link eth2", "different", "mtu", "9000", "1500"),
        (h2, "bridge br-vm", "missing", "ports", '"eth1"', "null"),
        (h2, "bridge br-vm", "extra", "ports", "null", '"extra0"'),
        (h3, "mesh drift", "missing", "segments.100.peers", json.dumps(peer), "null"),
        (h3, "mesh drift", "extra", "segments.100.peers", "null", json.dumps(stranger)),
    }
    assert items(doc) == expected
    assert {h["host"]: h["state"] for h in doc["hosts"]} == {
        h1: "drifted",
        h2: "drifted",
        h3: "drifted",
    }
    eth2 = [c for c in doc["consistency"] if c["resource"] == "link eth2" and c["field"] == "mtu"]
    assert eth2 and eth2[0]["values"] == {h1: 1500, h2: 9000, h3: 9000}

    text = reports["text"].read_text()
    assert text.index("extra0") > 0 and "eth2" in text and "1500" in text
    html = reports["html"].read_text()
    HTMLParser().feed(html)
    assert all(s in html for s in ("extra0", stranger, "link eth2", h3))
    assert "http://" not in html and "https://" not in html
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(reports["junit"]))
    failures = ET.parse(reports["junit"]).getroot().iter("failure")
    assert any("extra0" in (f.get("message", "") + (f.text or "")) for f in failures)
    families = {
        f.name: f for f in text_string_to_metric_families(reports["prometheus"].read_text())
    }
    samples = {
        (s.labels["host"], s.labels["kind"]): s.value
        for s in families["vnetctl_drift_items"].samples
    }
    assert samples[(h2, "extra")] == 1 and samples[(h3, "missing")] == 1
    assert samples[(h1, "different")] == 1 and samples[(h1, "extra")] == 0

    # still there on the next run: first seen at the first run
    first_started = doc["started"]
    code, again = drift(capsys, inv, db)
    assert code == 2
    assert {i["first_seen"] for h in again["hosts"] for i in h["items"]} == {first_started}

    # fixed by re-applying: drift gone, listed as resolved
    sh(lab, h2, "ip link del extra0")
    assert main(["run", PLAYBOOK, "-i", inv, "--format", "json"]) == 0
    capsys.readouterr()
    code, fixed = drift(capsys, inv, db)
    assert code == 0, fixed
    resolved = {(i["host"], i["kind"], i["field"]) for i in fixed["resolved"]}
    assert (h1, "different", "mtu") in resolved and (h2, "extra", "ports") in resolved
    assert (h3, "missing", "segments.100.peers") in resolved

    assert main(["drift", "history", "--db", str(db), "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs if isinstance(runs, list) else runs["runs"]) == 3


def test_an_unreachable_host_is_an_error_never_drift_free(drift_lab, capsys):
    lab, inv, db = drift_lab
    h3 = lab.host_names[2]
    stop_sshd(lab.name, h3)
    try:
        code, doc = drift(capsys, inv, db)
    finally:
        start_sshd(lab.name, h3)
    assert code == 3  # unreachable alone, no drift on the hosts reached
    states = {h["host"]: h["state"] for h in doc["hosts"]}
    assert states[h3] == "unreachable" and doc["summary"]["unreachable"] == 1
    assert [s for h, s in states.items() if h != h3] == ["in_sync", "in_sync"]
    # the others' mesh peers depend on h3's VTEP: not compared, and said so
    others = [h for h in doc["hosts"] if h["host"] != h3]
    assert all("mesh 'drift' not checked" in h["reason"] for h in others)
    assert all(h["resources"] == 2 for h in others)
