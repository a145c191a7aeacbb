"""Where boot persistence is chosen (a play's `persist:`, the inventory's vnetctl_persist
and vnetctl_persist_root), refused on the controller with file:line when wrong, what
the host is sent, and how a run shows it (the mode, once per host; the files' diff)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fake_catalog import CATALOG
from rich.console import Console

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory
from vnetctl.output.console import ConsoleReporter
from vnetctl.playbook.loader import load_playbook
from vnetctl.runner.payload import build_stdin, unpack
from vnetctl.runner.results import RunResult, Status, TaskResult

PLAY = "- name: p\n  hosts: all\n  persist: {value}\n  tasks: []\n"


def test_a_play_declares_networkd_or_none(tmp_path):
    for value in ("networkd", "none"):
        path = tmp_path / "book.yml"
        path.write_text(PLAY.format(value=value))
        assert load_playbook(path, CATALOG)[0].persist == value
    path.write_text("- hosts: all\n  tasks: []\n")
    assert load_playbook(path, CATALOG)[0].persist is None  # the inventory's, or detected


@pytest.mark.parametrize("value", ["ifupdown", "yes", "'{{ mode }}'"])
def test_a_bad_persist_is_refused_with_file_and_line(tmp_path, value):
    path = tmp_path / "book.yml"
    path.write_text(PLAY.format(value=value))
    with pytest.raises(InputError) as info:
        load_playbook(path, CATALOG)
    text = str(info.value)
    assert text.startswith(f"{path}:3: play 'p': persist: ")
    assert "is not one of networkd, none" in text


def _host(tmp_path: Path, variables: str):
    path = tmp_path / "hosts.yml"
    path.write_text(f"all:\n  hosts:\n    kvm1:\n{variables}")
    return path, load_inventory(path).hosts["kvm1"]


def test_the_inventory_sets_the_mode_and_the_root(tmp_path):
    _, kvm1 = _host(tmp_path, "      vnetctl_persist: none\n      vnetctl_persist_root: /tmp/r\n")
    spec = ConnectionSpec.from_host(kvm1)
    assert (spec.persist, spec.persist_root) == ("none", "/tmp/r")
    assert ConnectionSpec.from_vars("kvm2", {}).persist is None


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [("vnetctl_persist", "always", "'always' is not one of networkd, none"),
     ("vnetctl_persist_root", "relative/dir", "expected an absolute path")],
)  # fmt: skip
def test_bad_inventory_settings_name_host_variable_and_line(tmp_path, var, value, words):
    path, kvm1 = _host(tmp_path, f"      {var}: {value}\n")
    with pytest.raises(InputError) as info:
        ConnectionSpec.from_host(kvm1)
    assert str(info.value).startswith(f"{path}:4: host kvm1: variable {var}: ")
    assert words in str(info.value)


def test_the_host_is_sent_the_settings_and_the_writer_only_with_a_module_that_persists():
    def payload(module, persist):
        stdin = build_stdin(Catalog(), [{"index": 0, "module": module, "args": {}}], True,
                            persist=persist)  # fmt: skip
        return unpack(stdin.splitlines()[1])

    sent = payload("link", {"mode": "networkd", "root": "/tmp/x"})
    assert sent["persist"] == {"mode": "networkd", "root": "/tmp/x"}
    assert "vnet_persist" in sent["code"]
    assert "vnet_persist" not in payload("ovs_port_group", None)["code"]


def _result(host, files, status=Status.CHANGED):
    persist = {"mode": "networkd", "why": "systemd-networkd is enabled here", "files": files}
    return TaskResult(host, "p", 0, "storage NIC", "link", status, "wrote the boot configuration",
                      data={"persist": persist}, resource="link eth3")  # fmt: skip


def test_a_run_says_the_mode_once_in_the_recap_and_diff_shows_each_file():
    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, color_system=None, width=200), show_diff=True)
    reporter.play_started("p", ["h1"], 2)
    path = "etc/systemd/network/10-vnetctl-eth3.network.d/10-vnetctl-link-eth3.conf"
    reporter.task_done(_result("h1", [{"path": path, "before": "[Link]\nMTUBytes=1500\n",
                                       "after": "[Link]\nMTUBytes=9000\n"}]))  # fmt: skip
    reporter.task_done(_result("h1", [], Status.OK))
    reporter.recap(RunResult(hosts=["h1"]))
    text = out.getvalue()
    assert "note: [h1] boot configuration" not in text  # said once, in the recap
    assert text.count("boot configuration: networkd (systemd-networkd is enabled here)") == 1
    assert "boot configuration: networkd (systemd-networkd is enabled here): 1 host\n" in text
    assert f"--- /{path}" in text and f"+++ /{path}" in text
    assert "-MTUBytes=1500" in text and "+MTUBytes=9000" in text


def test_the_recap_names_the_hosts_of_the_less_common_modes():
    out = io.StringIO()
    reporter = ConsoleReporter(Console(file=out, color_system=None, width=200))
    reporter.play_started("p", ["h1", "h2", "h3"], 1)
    for host, mode, why in [("h1", "networkd", "declared"), ("h2", "networkd", "declared"),
                            ("h3", "none", "declared")]:  # fmt: skip
        reporter.task_done(TaskResult(host, "p", 0, "t", "link", Status.OK, "",
                                      data={"persist": {"mode": mode, "why": why}}))  # fmt: skip
    reporter.recap(RunResult(hosts=["h1", "h2", "h3"]))
    text = out.getvalue()
    assert "note:" not in text
    assert "boot configuration: networkd (declared): 2 hosts; none (declared): 1 host (h3)" in text
