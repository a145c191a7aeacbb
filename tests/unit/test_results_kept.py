"""What a run keeps of each result (vnetctl.runner.results.Keep), on a lab host's recorded
records replayed for several hosts (bench.results_memory): the console's run keeps no
host model, the JSON run keeps it as text, and the report is the one written before
(tests/unit/fixtures/results/*.report.json: written by the code before Keep existed)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bench.results_memory import recorded, replay, retained_kib
from vnetctl import secrets
from vnetctl.output import json_report
from vnetctl.runner.results import Keep, PackedResult, Rescued, Status, kept

FIXTURES = Path(__file__).parent / "fixtures" / "results"
HOSTS = ["h1", "h2"]
# (workload, a secret of the run, the report written before for HOSTS)
REPORTS = [
    ("ten_tasks", None, "ten_tasks.report.json"),
    ("ten_tasks", "LOWER_UP", "ten_tasks.redacted.report.json"),  # in every link's flags
    ("site", None, "site.report.json"),
]


@pytest.fixture(autouse=True)
def fresh_registry():
    secrets.registry().reset()
    yield
    secrets.registry().reset()


def facts_result(keep: Keep):
    run = replay(recorded("ten_tasks"), HOSTS, keep)
    return run, next(r for r in run.results if r.module == "facts")


@pytest.mark.parametrize("keep", [Keep.ALL, Keep.REPORT])
@pytest.mark.parametrize(("workload", "secret", "report"), REPORTS)
def test_the_json_report_is_the_one_written_before(workload, secret, report, keep):
    if secret:
        secrets.registry().add(secret)
    run = replay(recorded(workload), HOSTS, keep)
    text = io.StringIO()
    json_report.write(run, text, playbook=f"{workload}.yml", check=False)
    assert text.getvalue() == (FIXTURES / report).read_text()
    if secret:
        assert secret not in text.getvalue() and "***" in text.getvalue()


def test_the_report_of_a_run_without_results_is_what_dumps_writes():
    run = replay(recorded("site"), [])
    text = io.StringIO()
    json_report.write(run, text, playbook="b.yml", check=True)
    document = json_report.run_document(run, playbook="b.yml", check=True)
    assert text.getvalue() == json_report.dumps(document) + "\n"


def test_the_console_run_keeps_no_host_model():
    run, facts = facts_result(Keep.RECAP)
    assert facts.data == {} and facts.diff is None and facts.changes == []
    assert all(r.data == {} and r.diff is None for r in run.results)
    everything, _ = facts_result(Keep.ALL)  # what the recap and the exit code read: the same
    assert run.stats() == everything.stats() and run.exit_code() == everything.exit_code()
    assert [(r.host, r.index, r.status, r.msg) for r in run.results] == [
        (r.host, r.index, r.status, r.msg) for r in everything.results
    ]


def test_the_json_run_keeps_the_host_model_as_text_only():
    run, facts = facts_result(Keep.REPORT)
    assert isinstance(facts, PackedResult) and facts.data == {}
    assert facts.packed.count('"links":') == 1  # the facts module's two copies: one
    _, whole = facts_result(Keep.ALL)
    assert facts.to_dict() == whole.to_dict()
    assert facts.to_dict()["data"]["ansible_facts"]["vnet"]["links"]


def test_the_facts_module_s_model_is_kept_once():
    _, facts = facts_result(Keep.ALL)
    assert facts.data["ansible_facts"]["vnet"] is facts.data["facts"]


def test_a_rescue_turns_a_kept_result_rescued():
    run = replay(recorded("site"), ["h1"], Keep.REPORT)
    failed = kept(run.results[0], Keep.REPORT)
    failed.status = Status.FAILED
    run.results[0] = failed
    assert run.rescue(Rescued("h1", failed.play, [failed.index]))
    assert run.results[0].status is Status.RESCUED


@pytest.mark.parametrize(("keep", "most"), [(Keep.RECAP, 4.0), (Keep.REPORT, 12.0)])
def test_what_a_run_keeps_per_host_is_bounded(keep, most):
    """KiB per host of ten_tasks (a lab host's model: 4 links): 55.4 before Keep."""
    assert retained_kib(recorded("ten_tasks"), 200, keep) < most
