"""The documented shape of `vnetctl facts`: vnetctl/output/schema/facts.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from vnetctl.catalog import Catalog
from vnetctl.cli.facts_cmd import SCHEMA, schema

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "facts").glob("*.json"))


def test_the_schema_is_a_valid_json_schema_where_the_help_says():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert json.loads((Path(__file__).parents[2] / SCHEMA).read_text()) == schema()


def as_printed(recorded: dict) -> dict:
    """Recorded fact sources as `vnetctl facts` prints them (the host library's view:
    fdb entries that point at a remote VTEP)."""
    facts = Catalog().host_lib().Facts(recorded)
    return {key: facts.fdb if key == "fdb" else value for key, value in recorded.items()}


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_recorded_host_facts_fit_the_schema(fixture):
    facts = as_printed(json.loads(fixture.read_text()))
    jsonschema.validate(
        {"hosts": {"h1": facts}, "errors": {"h2": "unreachable: refused"}}, schema()
    )


def test_a_module_may_add_a_fact_source_of_its_own():
    facts = json.loads(FIXTURES[0].read_text())
    facts["tc"] = {"eth0": [{"kind": "htb"}]}
    jsonschema.validate({"hosts": {"h1": facts}, "errors": {}}, schema())


@pytest.mark.parametrize(
    "document",
    [
        {"h1": {"links": [], "addrs": []}},  # the shape the old --help example assumed
        {"hosts": {"h1": {"links": []}}, "errors": {}},
        {"hosts": {}, "errors": {"h1": 3}},
        {"hosts": {"h1": {"links": [], "addrs": [], "ovs": {"bridges": {}}}}, "errors": {}},
    ],
)
def test_what_facts_never_print_does_not_fit(document):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema())
