"""IPFIX from ovs_bridge on real Open vSwitch (userspace datapath), read by a collector
of the test's own (tests/integration/ipfix_collector.py, raw RFC 7011): each record says
its flow's own packets and octets and a time inside the run; a template interval is
refused before any change where OVS cannot set one (before 3.2: 600 s, fixed); where it
can, a collector restarted mid-run decodes again within the declared interval."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, load_state
from vnetctl.lab.lab import in_host_argv

pytestmark = pytest.mark.lab

COLLECTOR = (Path(__file__).parent / "ipfix_collector.py").read_text()
PORT, PAYLOAD = 4739, 1000  # ping -s 1000: 1028 octets of IPv4 per packet
IPFIX = {"targets": [f"127.0.0.1:{PORT}"], "sampling": 1}


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("fx", tmp_path_factory.mktemp("fx"), hosts=2, ovs=True) as state:
        h2 = state.host_names[1]
        host_exec(state.name, h2, ["ip", "addr", "add", "198.18.9.2/24", "dev", "eth1"], check=True)
        yield state


def apply(lab, tmp_path, ipfix: dict, capsys) -> tuple[int, dict]:
    book = tmp_path / "fx.yml"
    bridge = {"name": "br-fx", "ports": [{"name": "eth1"}], "addresses": ["198.18.9.1/24"],
              "ipfix": ipfix}  # fmt: skip
    book.write_text(yaml.safe_dump([{"hosts": lab.host_names[0], "tasks": [
        {"name": "flows", "ovs_bridge": bridge}]}]))  # fmt: skip
    code = main(["run", str(book), "-i", str(lab.inventory_path), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def on_h1(lab, *argv: str) -> str:
    return host_exec(lab.name, lab.host_names[0], list(argv), check=True).stdout


def collect(lab, seconds: float, want: int):
    """A collector started now, on h1 (where ovs-vswitchd exports to 127.0.0.1)."""
    state = load_state(lab.name)
    spec = json.dumps({"port": PORT, "seconds": seconds, "want": want})
    argv = in_host_argv(state, state.host(lab.host_names[0]), ["python3", "-c", COLLECTOR, spec])
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ping(lab, count: int) -> None:
    host_exec(lab.name, lab.host_names[0], ["ping", "-c", str(count), "-i", "0.2", "-s",
              str(PAYLOAD), "198.18.9.2"], check=True)  # fmt: skip


def schema(lab) -> tuple[int, ...]:
    text = on_h1(lab, "ovsdb-client", "get-schema-version", "Open_vSwitch").strip()
    return tuple(int(w) for w in text.split("."))


def test_records_say_their_own_packets_octets_and_times(lab, tmp_path, capsys):
    with collect(lab, 20, 4) as collector:
        wait_until(lambda: f":{PORT} " in on_h1(lab, "ss", "-uln"), 10, "the collector")
        before = time.time()
        code, doc = apply(lab, tmp_path, IPFIX, capsys)  # a new exporter: templates first
        assert code == 0, doc
        ping(lab, 3)
        out, err = collector.communicate(timeout=30)
    after = time.time()
    found = json.loads(out)
    records = [r for r in found["records"] if "198.18.9.2" in (r["src"], r["dst"])]
    assert len(records) >= 4, (found, err)
    for record in records:  # one sampled packet each (sampling 1, no cache)
        assert (record["packets"], record["octets"]) == (1, PAYLOAD + 28), record
        assert before - 1 <= record["start"] <= record["end"] <= after + 1, (record, before)
    # what nfdump 1.7 reads as a record's packets: OVS's running total of the exporter
    totals = [r["total_packets"] for r in records]
    assert totals == sorted(totals) and totals[-1] > 1


def test_a_template_interval_is_set_or_refused_before_any_change(lab, tmp_path, capsys):
    interval = dict(IPFIX, template_interval=5)
    if schema(lab) >= (8, 4, 0):
        pytest.skip("this OVS sets template_interval: see the restart test")
    code, doc = apply(lab, tmp_path, interval, capsys)
    (result,) = doc["results"]
    assert code == 2 and "needs Open vSwitch 3.2 or later" in result["msg"], result
    assert "600 s, fixed" in result["msg"]


def test_a_restarted_collector_decodes_within_the_template_interval(lab, tmp_path, capsys):
    version = schema(lab)
    if version < (8, 4, 0):
        pytest.skip(f"OVS here has OVSDB schema {'.'.join(map(str, version))}: before 3.2 "
                    "(schema 8.4.0) it re-sends IPFIX templates every 600 s, fixed")  # fmt: skip
    code, doc = apply(lab, tmp_path, dict(IPFIX, template_interval=5), capsys)
    assert code == 0, doc
    with collect(lab, 3, 1) as first:  # a collector that got the templates, then stops
        ping(lab, 3)
        first.communicate(timeout=30)
    with collect(lab, 15, 1) as restarted:
        wait_until(lambda: f":{PORT} " in on_h1(lab, "ss", "-uln"), 10, "the collector")
        while restarted.poll() is None:  # traffic until it decodes a record (15 s at most)
            ping(lab, 2)
        found = json.loads(restarted.communicate(timeout=30)[0])
    assert found["records"], found
    assert found["records"][0]["after"] <= 5 + 2, found  # the interval, and a ping's time
