"""traffic_shaping on the lab's real kernel: playbooks/nioc.yml applied, re-applied (nothing
changes), one limit moved (one `tc class change`; handles and counters kept), drift made
by hand found in every report format, bad input refused before any change, and live
shaping written back by `vnetctl snapshot`. Rates are measured in test_shaping_rates.py."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

NIOC = str(Path(__file__).parents[2] / "playbooks" / "nioc.yml")
SEGMENT = "192.168.225"  # eth1 of lab host i gets .i: traffic stays on the lab's segment


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["run", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def sh(lab, host: str, script: str) -> str:
    done = host_exec(lab.name, host, ["sh", "-c", script])
    assert done.returncode == 0, done.stderr
    return done.stdout


def qdiscs(lab, host: str, dev: str = "eth1") -> dict[str, dict]:
    return {q["handle"]: q for q in json.loads(sh(lab, host, f"tc -j -s qdisc show dev {dev}"))}


def class_bytes(lab, host: str, dev: str = "eth1") -> dict[str, int]:
    """{classid: bytes sent} from `tc -s class show` (iproute2 6.1 prints classes as text)."""
    text = sh(lab, host, f"tc -s class show dev {dev}")
    found = re.findall(r"class htb (\S+) .*?\n\s*Sent (\d+) bytes", text)
    return {cid: int(sent) for cid, sent in found}


def test_nioc_applies_then_changes_nothing_then_one_limit_is_one_class_change(
    lab3, fresh_hosts, capsys
):
    inv = str(lab3.inventory_path)
    code, first = run_json(capsys, NIOC, "-i", inv)
    assert code == 0, first
    assert {r["status"] for r in first["results"]} == {"changed"}
    code, second = run_json(capsys, NIOC, "-i", inv)
    assert code == 0 and {r["status"] for r in second["results"]} == {"ok"}, second
    assert not any(r.get("commands") for r in second["results"])

    h1, h2, _ = lab3.host_names
    for index, host in enumerate((h1, h2), start=1):
        sh(lab3, host, f"ip addr add {SEGMENT}.{index}/24 dev eth1")
    # traffic through the root, the default class (ICMP) and management (TCP to port 22)
    sh(lab3, h1, f"ping -q -c 20 -i 0.01 -s 1200 {SEGMENT}.2 >/dev/null")
    # (sshd listens on eth0 only: the SYN to port 22 is what goes, refused, and that is enough)
    sh(lab3, h1, f"timeout 5 bash -c 'echo >/dev/tcp/{SEGMENT}.2/22' 2>/dev/null || true")
    qdiscs_before, classes_before = qdiscs(lab3, h1), class_bytes(lab3, h1)
    assert qdiscs_before["1:"]["bytes"] > 20 * 1200 and qdiscs_before["2:"]["bytes"] > 0

    code, third = run_json(capsys, NIOC, "-i", inv, "-e", "migration_limit=200")
    assert code == 0, third
    mine = next(r for r in third["results"] if r["host"] == h1)
    # in NIOC's words: the limit, and the bursts sized at it; no other class's numbers
    assert [c["field"] for c in mine["changes"]] == ["classes.migration.burst",
                                                      "classes.migration.cburst",
                                                      "classes.migration.limit"]  # fmt: skip
    (command,) = mine["commands"]  # exactly one
    assert command.startswith("tc class change dev eth1 parent 1:1 classid 1:e092 ")
    assert "ceil 200mbit" in command
    qdiscs_after, classes_after = qdiscs(lab3, h1), class_bytes(lab3, h1)
    assert set(qdiscs_after) == set(qdiscs_before)  # root and leaves: the same handles
    assert set(classes_after) == set(classes_before)
    for handle, before in qdiscs_before.items():  # counters kept: nothing was re-created
        assert qdiscs_after[handle]["bytes"] >= before["bytes"] > 0 or before["bytes"] == 0
    assert all(classes_after[c] >= sent for c, sent in classes_before.items())
    assert classes_before["1:a4ff"] > 0  # the management class saw the SYN to port 22
    assert "ceil 200Mbit" in sh(lab3, h1, "tc class show dev eth1 classid 1:e092")


def drift(capsys, inv: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    code = main(["drift", NIOC, "-i", inv, "--history", str(tmp_path / "h.sqlite"),
                 "--format", "json", *extra])  # fmt: skip
    return code, json.loads(capsys.readouterr().out)


def test_a_class_rate_changed_by_hand_is_drift_in_every_format(lab3, fresh_hosts, capsys, tmp_path):
    inv = str(lab3.inventory_path)
    assert run_json(capsys, NIOC, "-i", inv)[0] == 0
    assert drift(capsys, inv, tmp_path)[0] == 0
    h1, h2, h3 = lab3.host_names
    # without burst and cburst: tc puts its defaults (1600 bytes) back, drift sees them too;
    # 20 Mbit/s is less than management's shares alone give (50 x 2166 kbit/s): no
    # reservation explains it, so it is the class's `rate` (and its reservation reads none)
    sh(lab3, h2, "tc class change dev eth1 parent 1:1 classid 1:a4ff htb rate 20mbit "
                 "ceil 1000mbit prio 0 quantum 819200")  # fmt: skip
    sh(lab3, h3, "tc class add dev eth1 parent 1:1 classid 1:99 htb rate 5mbit ceil 10mbit")
    reports = {f: tmp_path / f"drift.{f}" for f in ("text", "html", "junit", "prometheus")}
    code, doc = drift(capsys, inv, tmp_path, *(f"--report={f}={p}" for f, p in reports.items()))
    assert code == 2, doc
    items = {(i["host"], i["resource"], i["kind"], i["field"], json.dumps(i["declared"]),
              json.dumps(i["actual"])) for h in doc["hosts"] for i in h["items"]}  # fmt: skip
    extra = "class 1:99 parent 1:1 rate 5 ceil 10 prio 0 quantum 62500 burst 1600 cburst 1600"
    bursts = {i[3]: (json.loads(i[4]), json.loads(i[5])) for i in items if "burst" in i[3]}
    assert bursts.keys() == {"classes.management.burst", "classes.management.cburst"}
    assert bursts["classes.management.burst"][0] == 4980786  # 1000 Mbit/s x 39.3 ms + 64 KiB
    assert all(actual <= 1600 for _, actual in bursts.values())  # tc's default, read back
    assert items - {i for i in items if "burst" in i[3]} == {
        (h2, "shaping eth1", "different", "classes.management.reservation", "50", "null"),
        (h2, "shaping eth1", "different", "classes.management.rate", "null", "20"),
        (h3, "shaping eth1", "extra", "extra", "null", json.dumps(extra)),
    }
    (rate,) = [c for c in doc["consistency"] if c["field"] == "classes.management.reservation"]
    assert rate["values"] == {h1: 50, h2: None, h3: 50}  # the same policy, one host apart
    text, html = reports["text"].read_text(), reports["html"].read_text()
    for shown in (text, html):
        assert "classes.management.rate" in shown and "20" in shown and "1:99" in shown
    failures = " ".join((f.get("message") or "") + (f.text or "")
                        for f in ET.parse(reports["junit"]).getroot().iter("failure"))  # fmt: skip
    assert "classes.management.rate" in failures and "20" in failures
    families = {
        f.name: f for f in text_string_to_metric_families(reports["prometheus"].read_text())
    }
    samples = {(s.labels["host"], s.labels["kind"]): s.value
               for s in families["vnetctl_drift_items"].samples}  # fmt: skip
    assert samples[(h2, "different")] == 4 and samples[(h3, "extra")] == 1  # rate, bursts
    assert samples[(h1, "different")] == 0


def test_bad_input_exits_1_with_its_line_and_touches_nothing(lab3, fresh_hosts, capsys, tmp_path):
    inv = str(lab3.inventory_path)
    book = Path(NIOC).read_text()
    cases = {
        "reservations": (book, ["-e", "storage_reservation=701"],
                         "reservations add up to 751 Mbit/s, more than 75 % of 1000 Mbit/s"),
        "above its limit": (book.replace("limit: \"{{ migration_limit }}\"",
                                         "limit: \"{{ migration_limit }}\"\n            "
                                         "reservation: 450"), ["-e", "storage_reservation=100"],
                            "class migration: reservation 450 Mbit/s is above its limit 400"),
        "uplink": (book, ["-e", "uplink=eth7"], "eth7 does not exist on this host"),
        "shares": (book.replace("shares: high", "shares: 0", 1), [],
                   "class storage: shares 0 is not low, normal, high or 1..100"),
    }  # fmt: skip
    for name, (text, extra, says) in cases.items():
        assert text != book or extra, name  # each case changes the playbook or its vars
        path = tmp_path / f"{name.replace(' ', '_')}.yml"
        path.write_text(text)
        code = main(["run", str(path), "-i", inv, *extra])
        err = capsys.readouterr().err
        assert code == 1, (name, err)
        where = rf"{re.escape(str(path))}:\d+: play 'NIOC on the uplink' task '[^']+': hosts "
        assert re.search(where + r"[^:]+: " + re.escape(says), err), err
    for host in lab3.host_names:  # nothing touched: every uplink still has the kernel's qdisc
        assert [q["kind"] for q in qdiscs(lab3, host).values()] == ["noqueue"]


def test_live_shaping_is_written_back_and_reapplies_as_nothing(lab3, fresh_hosts, capsys, tmp_path):
    inv = str(lab3.inventory_path)
    assert run_json(capsys, NIOC, "-i", inv)[0] == 0
    out = tmp_path / "snapshot.yml"
    assert main(["snapshot", "-i", inv, "-o", str(out)]) == 0
    capsys.readouterr()
    text = out.read_text()
    assert text.count("traffic_shaping:") == 1  # hosts alike share a play
    assert "class-e092" in text and "limit: 400" in text
    code, again = run_json(capsys, str(out), "-i", inv, "--check")
    assert code == 0 and {r["status"] for r in again["results"]} == {"ok"}, again
