"""Limits the host library takes from the kernel, on a real one: a device that reports
max_mtu 0 (lo) has no maximum."""

from __future__ import annotations

import json

import pytest

from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab


def lo_mtu(lab, host: str) -> int:
    out = host_exec(lab.name, host, ["ip", "-j", "-d", "link", "show", "dev", "lo"]).stdout
    link = json.loads(out)[0]
    assert (link["min_mtu"], link["max_mtu"]) == (0, 0)  # what iproute2 reports for lo
    return link["mtu"]


def test_lo_mtu_is_not_refused_for_a_device_without_a_maximum(lab3, fresh_hosts, capsys, tmp_path):
    """lo reports min_mtu 0 and max_mtu 0: no maximum, not "range 0..0"."""
    host = lab3.host_names[0]
    original = lo_mtu(lab3, host)
    book = tmp_path / "lo.yml"
    book.write_text("- hosts: all\n  tasks:\n    - link: {name: lo, mtu: 9000}\n")
    try:
        argv = ["run", str(book), "-i", str(lab3.inventory_path), "--limit", host]
        code = main([*argv, "--format", "json"])
        doc = json.loads(capsys.readouterr().out)
        assert code == 0, doc["results"][0]["msg"]
        assert lo_mtu(lab3, host) == 9000
    finally:
        host_exec(lab3.name, host, ["ip", "link", "set", "dev", "lo", "mtu", str(original)])
