"""What `vnetctl run` keeps of each result on the lab (vnetctl.runner.results.Keep):
with the console, no host's model (the recap reads statuses); with --format json, the
model packed as text, the report written a result at a time as run_document made it;
the same through worker processes.

vnetctl runs in a process of its own (it forks its workers, which a test process with
threads of its own must not do), wrapped so that it also writes what the run kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

TEN_TASKS = Path(__file__).resolve().parents[2] / "bench" / "workloads" / "ten_tasks.yml"

# `vnetctl run ARGV...` with the RunResult execute returned described in the file argv[1]
KEPT_BY_RUN = """
import io, json, sys
import vnetctl.cli.run_cmd as run_cmd
from vnetctl.cli.main import main
from vnetctl.output import json_report
from vnetctl.runner.results import PackedResult

seen, execute = [], run_cmd.execute
run_cmd.execute = lambda *a, **k: seen.append(execute(*a, **k)) or seen[-1]
out, sys.stdout = sys.stdout, io.StringIO()
code = main(sys.argv[2:])
printed, sys.stdout = sys.stdout.getvalue(), out
print(printed, end="")
(outcome,) = seen
document = json_report.run_document(outcome, playbook=sys.argv[-1], check=False)
with open(sys.argv[1], "w") as f:
    json.dump({
        "code": code,
        "as_report": printed == json_report.dumps(document) + "\\n",
        "kept": [{"module": r.module, "packed": isinstance(r, PackedResult),
                  "detail": r.data != {} or r.diff is not None} for r in outcome.results],
    }, f)
"""


def run_kept(tmp_path: Path, *argv: str) -> tuple[str, dict]:
    """(what vnetctl printed, what its run kept)."""
    where = tmp_path / "kept.json"
    done = subprocess.run([sys.executable, "-c", KEPT_BY_RUN, str(where), "run", *argv],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(where.read_text())


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_console_run_keeps_no_host_model(lab3, tmp_path, workers):
    printed, kept = run_kept(tmp_path, "-i", str(lab3.inventory_path), "--workers", workers,
                             str(TEN_TASKS))  # fmt: skip
    assert kept["code"] == 0 and "RECAP" in printed
    facts = [r for r in kept["kept"] if r["module"] == "facts"]
    assert len(facts) == len(lab3.hosts) and len(kept["kept"]) == 10 * len(lab3.hosts)
    assert not any(r["detail"] for r in kept["kept"])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_json_run_keeps_the_model_as_text_and_reports_it_whole(lab3, tmp_path, workers):
    printed, kept = run_kept(tmp_path, "-i", str(lab3.inventory_path), "--format", "json",
                             "--workers", workers, str(TEN_TASKS))  # fmt: skip
    assert kept["code"] == 0 and kept["as_report"]
    facts = [r for r in kept["kept"] if r["module"] == "facts"]
    assert facts and all(r["packed"] and not r["detail"] for r in facts)
    shown = [r["data"] for r in json.loads(printed)["results"] if r["module"] == "facts"]
    assert len(shown) == len(lab3.hosts)
    for data in shown:
        assert {link["ifname"] for link in data["facts"]["links"]} >= {"lo", "eth0"}
        assert data["ansible_facts"] == {"vnet": data["facts"]}
