"""What `vnetctl run` keeps of each result on the lab (vnetctl.runner.results.Keep):
with the console, no host's model (the recap reads statuses); with --format json, the
model packed as text, the report written a result at a time as run_document made it;
the same through worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vnetctl.cli.run_cmd as run_cmd
from vnetctl.cli.main import main
from vnetctl.output import json_report
from vnetctl.runner.results import PackedResult

pytestmark = pytest.mark.lab

TEN_TASKS = Path(__file__).resolve().parents[2] / "bench" / "workloads" / "ten_tasks.yml"


@pytest.fixture
def outcomes(monkeypatch) -> list:
    """Each RunResult `vnetctl run` got from execute, as it kept it."""
    seen: list = []
    execute = run_cmd.execute

    def recording(*args, **kwargs):
        seen.append(execute(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(run_cmd, "execute", recording)
    return seen


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_console_run_keeps_no_host_model(lab3, outcomes, capsys, workers):
    argv = ["run", "-i", str(lab3.inventory_path), str(TEN_TASKS), "--workers", workers]
    assert main(argv) == 0
    assert "RECAP" in capsys.readouterr().out
    (outcome,) = outcomes
    facts = [r for r in outcome.results if r.module == "facts"]
    assert len(facts) == len(lab3.hosts) and len(outcome.results) == 10 * len(lab3.hosts)
    assert all(r.data == {} and r.diff is None for r in outcome.results)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_json_run_keeps_the_model_as_text_and_reports_it_whole(lab3, outcomes, capsys, workers):
    argv = ["run", "-i", str(lab3.inventory_path), str(TEN_TASKS), "--format", "json",
            "--workers", workers]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    (outcome,) = outcomes
    facts = [r for r in outcome.results if r.module == "facts"]
    assert facts and all(isinstance(r, PackedResult) and r.data == {} for r in facts)
    document = json_report.run_document(outcome, playbook=str(TEN_TASKS), check=False)
    assert text == json_report.dumps(document) + "\n"
    printed = [r["data"] for r in json.loads(text)["results"] if r["module"] == "facts"]
    assert len(printed) == len(lab3.hosts)
    for data in printed:
        assert {link["ifname"] for link in data["facts"]["links"]} >= {"lo", "eth0"}
        assert data["ansible_facts"] == {"vnet": data["facts"]}
