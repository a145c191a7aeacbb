"""Names that are not interfaces' (a port group's, an OVS mirror's) follow one rule, on
the controller with file:line and again on the host: one word, never an option, never
a line break. What is printed escapes control characters all the same (issue 31)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from vnetctl.catalog import Catalog
from vnetctl.drift.formats.text import render
from vnetctl.errors import InputError, Location
from vnetctl.output.console import ConsoleReporter
from vnetctl.playbook.validate import validate_args
from vnetctl.runner.results import Status, TaskResult

CATALOG = Catalog()
HOST = CATALOG.host_lib()
FIXTURES = Path(__file__).parent / "fixtures"
FORGED = "web\nchanged: [h2] forged"


def refused(module: str, args: dict) -> str:
    with pytest.raises(InputError) as info:
        validate_args(module, CATALOG[module], args, lambda key: Location("book.yml", 7), "t")
    return str(info.value)


@pytest.mark.parametrize("name", ["--", "-x", "a b", FORGED, ".hidden", "x" * 65, "é", ""])
def test_a_mirror_name_no_command_may_hold_is_refused_at_its_line(name):
    mirror = {"name": name, "select_all": True, "output_vlan": 9}
    text = refused("ovs_bridge", {"name": "br-vm", "mirrors": [mirror]})
    assert text.startswith("book.yml:7") and "not a valid name" in text


@pytest.mark.parametrize("name", [FORGED, "-web", "web\r", "web\x1b[2J", "web group"])
def test_a_port_group_name_is_refused_at_its_line(name):
    text = refused("port_group", {"name": name, "bridge": "br-vm"})
    assert text.startswith("book.yml:7") and "not a valid name" in text
    assert "\n" not in text


def test_good_names_pass():
    for module, args in (
        ("port_group", {"name": "web-1.tier_a", "bridge": "br-vm"}),
        ("ovs_bridge", {"name": "br-vm", "mirrors": [{"name": "span", "output_vlan": 9}]}),
    ):
        validate_args(module, CATALOG[module], args, lambda key: Location("b", 1), "t")


def test_a_mirror_left_with_such_a_name_is_removed_by_its_uuid():
    """A mirror named `--` (made before names were checked) broke every later run: the
    removal's `get mirror --` read as ovs-vsctl's own separator."""
    facts = json.loads((FIXTURES / "facts" / "ovs_teamed.json").read_text())
    bridge = facts["ovs_config"]["bridges"]["br-vm"]
    bridge["mirrors"]["--"] = bridge["mirrors"]["span"]
    bridge["mirror_uuids"] = {"span": "uuid-span", "--": "0a1b2c3d-0000-4000-8000-000000000001"}
    module = CATALOG.load("ovs_bridge")
    params = {"name": "br-vm", "mirrors": [{"name": "span", "select_src_ports": ["hostvm"],
                                           "output_vlan": 99}]}  # fmt: skip
    planned = HOST.plan(module, params, HOST.Facts(facts))
    lines = [" ".join(step) for step in planned["steps"] if step[0] == "ovs-vsctl"]
    assert lines == ["ovs-vsctl remove bridge br-vm mirrors 0a1b2c3d-0000-4000-8000-000000000001"]


def test_the_console_escapes_control_characters_in_what_it_prints():
    console = Console(record=True, width=300, force_terminal=False)
    reporter = ConsoleReporter(console, show_diff=True)
    reporter.task_done(TaskResult(
        "h1", "p", 0, FORGED, "port_group", Status.CHANGED, msg="line one\nok: [h9] two",
        changes=[{"field": "ports.vnet0\x1b[2J", "before": None, "after": FORGED}],
    ))  # fmt: skip
    reporter.note("h1\nchanged: [h3]", "x\ry")
    lines = console.export_text().splitlines()
    forged = ("changed: [h2]", "ok: [h9]", "changed: [h3]")
    assert not any(line.startswith(forged) for line in lines)
    assert "\x1b" not in console.export_text(styles=False)
    assert "web\\nchanged: [h2] forged" in lines[0]
    assert lines[1] == "    ok: [h9] two"  # a message's own lines stay, indented


def test_the_drift_text_report_escapes_them_too():
    from drift_samples import full_report

    report = full_report()
    report.hosts[1].items[0].resource = FORGED
    text = render(report)
    assert "\nchanged: [h2]" not in text and "web\\nchanged: [h2] forged" in text
