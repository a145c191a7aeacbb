"""`--format json`: the run's document, built without copying every host's facts."""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path

import pytest

from vnetctl import secrets
from vnetctl.output import json_report
from vnetctl.runner.results import RunResult, Status, TaskResult

SECRET = "Hunter2Hunter2"


@pytest.fixture(autouse=True)
def fresh_registry():
    secrets.registry().reset()
    yield
    secrets.registry().reset()


def facts_result(host: str) -> TaskResult:
    facts = {"links": [{"ifname": "eth0", "mtu": 1500, "addr": [{"local": "10.0.0.1"}]}],
             "bridges": {}, "none": None}  # fmt: skip
    return TaskResult(host, "p", 9, "facts", "facts", Status.OK, msg="read",
                      changes=[{"field": "mtu", "before": 1500, "after": 9000}],
                      diff={"before": {"mtu": 1500}, "after": {"mtu": 9000}},
                      commands=[f"ip link set eth0 alias {SECRET}"],
                      data={"facts": facts, "persist": "networkd"},
                      resource="link eth0")  # fmt: skip


def a_run() -> RunResult:
    return RunResult(results=[facts_result("h1"), facts_result("h2")], hosts=["h1", "h2"])


def test_a_result_as_json_data_is_what_asdict_made():
    result = facts_result("h1")
    assert result.to_dict() == dataclasses.asdict(result)
    assert json.dumps(result.to_dict(), default=str) == json.dumps(
        dataclasses.asdict(result), default=str
    )


def test_the_document_redacts_secrets_and_leaves_the_run_results_as_they_were():
    run = a_run()
    before = [dataclasses.asdict(r) for r in run.results]
    secrets.registry().add(SECRET)
    text = json_report.dumps(json_report.run_document(run, playbook="b.yml", check=True))
    assert SECRET not in text and "alias ***" in text
    assert [dataclasses.asdict(r) for r in run.results] == before  # nothing redacted in place
    doc = json.loads(text)
    assert doc["results"][0]["data"]["facts"]["links"][0]["ifname"] == "eth0"
    assert doc["results"][1]["status"] == "ok"


class Word(enum.StrEnum):
    OK = "ok"


class Count(enum.IntEnum):
    THREE = 3


ODD = {
    "enums": [Word.OK, Count.THREE], "tuple": (1, [], {}, ()), "path": Path("/etc/x"),
    "floats": [1.5, float("nan"), float("inf"), -float("inf"), 1e300, -0.0, 10**30],
    7: "int key", 2.5: "float key", True: "bool key", False: 0, None: [None, True, False],
    "text": 'é\u2028\n"\\ \x00 ☃ 𝄞 {"[,]": 1}', "set": {1}, "deep": [[[{"a": [{}]}]]],
}  # fmt: skip


@pytest.mark.parametrize("value", [ODD, [], {}, "x", 1, None, [1], {"a": {}}, (1,)])
def test_the_text_is_what_json_dumps_writes_with_an_indent_of_two(value):
    assert json_report.dumps(value) == json.dumps(value, indent=2, default=str)


def test_a_run_document_is_written_as_json_dumps_writes_it():
    doc = json_report.run_document(a_run(), playbook="b.yml", check=False)
    assert json_report.dumps(doc) == json.dumps(doc, indent=2, sort_keys=False, default=str)


def test_a_key_json_cannot_write_is_refused_as_json_dumps_refuses_it():
    with pytest.raises(TypeError):
        json_report.dumps({(1, 2): "tuple key"})
