"""Checks of the host library that a mutation pass found no test for (each test fails
with its check deleted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
host = CATALOG.host_lib()
FACTS = Path(__file__).parent / "fixtures" / "facts"


def test_a_command_line_must_be_text():
    with pytest.raises(host.ModuleError, match="a command line must be text"):
        host.check_line(("link", "set"))


def test_a_source_is_asked_for_as_declared_per_device_or_for_the_whole_host():
    def runner(argv, stdin=None):
        return "[]"

    sources = {
        "classes": host.per_device(["tc", "-j", "class", "show", "dev", "{dev}"]),
        "qdiscs": host.command(["tc", "-j", "qdisc", "show"]),
    }
    facts = host.Facts(runner=runner)
    facts.declare(sources)
    with pytest.raises(host.ModuleError, match="'classes' is per device: asked for all"):
        facts.get("classes")
    with pytest.raises(host.ModuleError, match="'qdiscs' is for the whole host: asked for eth0"):
        facts.get("qdiscs", "eth0")


def test_numbers_equal_but_for_float_rounding_are_no_change():
    assert host.diff_fields({"x": 0.1 + 0.2}, {"x": 0.3}) == []
    assert host.diff_fields({"x": 0.3}, {"x": 0.31}) != []


@pytest.mark.parametrize(
    ("facts_file", "params", "message"),
    [
        ("plain_host.json", {"name": "br-new", "ports": ["eth1"]}, "would be created"),
        ("bridge_9000.json", {"name": "br-vm", "state": "absent"}, "would be removed"),
        ("bridge_9000.json", {"name": "br-vm", "stp": False}, "would be changed: stp"),
    ],
)
def test_check_mode_says_created_removed_or_which_fields(facts_file, params, message):
    facts = host.Facts(json.loads((FACTS / facts_file).read_text()))
    result = host.execute(CATALOG.load("linux_bridge"), params, True, facts)
    assert result["msg"] == message, result


def test_probe_names_fit_the_kernel_for_every_vni_the_spec_allows():
    probe = CATALOG.load("overlay_probe")
    assert len(probe.outside_name(16777215)) <= 15 and len(probe.namespace(16777215)) <= 255
    segment = {"vni": 16777216, "bridge": "b", "mtu": 1500, "address": "169.254.0.1"}
    with pytest.raises(host.ModuleError, match="16777216 is not within 1..16777215"):
        host.normalize_params(probe.ARGUMENT_SPEC, {"action": "setup", "segments": [segment]})
