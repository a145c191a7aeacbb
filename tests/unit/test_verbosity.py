"""What -v and -vv show of a plan, and what -vvv says of a connection: the tasks and
items a `when` left out with the false condition, the rendered arguments with secrets
as ***, the connection's settings without its password."""

from __future__ import annotations

import asyncio
import logging
import textwrap

import pytest
from fake_catalog import CATALOG
from rich.console import Console

from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory
from vnetctl.output.console import ConsoleReporter
from vnetctl.output.verbosity import command_lines, plan_lines
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.runner.pool import describe
from vnetctl.secrets import Secret, registry
from vnetctl.transport.base import TransportOptions
from vnetctl.transport.retry import with_retries

INVENTORY = "all:\n  hosts:\n    kvm1: {}\n    kvm2: {db_password: Hunter2-secret}\n"
BOOK = """\
- hosts: all
  tasks:
    - name: first only
      link: {name: eth1, mtu: 1500}
      when: inventory_hostname == 'kvm1'
    - name: ports
      link: {name: "{{ item }}", mtu: 9000}
      loop: [eth1, eth2]
      when: item != 'eth1'
    - name: secret
      link: {name: "x{{ db_password[:5] }}"}
      when: db_password is defined
"""


def planned(tmp_path):
    (tmp_path / "inv.yml").write_text(INVENTORY)
    (tmp_path / "book.yml").write_text(textwrap.dedent(BOOK))
    plays = load_playbook(tmp_path / "book.yml", CATALOG)
    (plan,) = plan_playbook(plays, load_inventory(tmp_path / "inv.yml"), CATALOG)
    return plan


def test_skipped_tasks_and_items_with_their_condition(tmp_path):
    plan = planned(tmp_path)
    assert plan.skipped == {
        "kvm1": [("ports (item=eth1)", "item != 'eth1'"), ("secret", "db_password is defined")],
        "kvm2": [("first only", "inventory_hostname == 'kvm1'"),
                 ("ports (item=eth1)", "item != 'eth1'")],
    }  # fmt: skip
    one = plan_lines(plan, 1)
    assert "[cyan]skipping[/]: [[bold]kvm2[/]] first only [dim](when: inventory_hostname == " \
        "'kvm1')[/]" in one  # fmt: skip
    assert not any("task" in line for line in one)


def test_rendered_arguments_from_vv_with_secrets_hidden(tmp_path):
    plan = planned(tmp_path)
    two = plan_lines(plan, 2)
    assert '[dim]task[/]: [[bold]kvm2[/]] secret [dim]link[/] {"name": "***"}' in two
    assert not any("Hunte" in line for line in two)
    assert command_lines(["ip link add name xHunte type dummy"], None, check=False) == [
        "    [dim]$[/] ip link add name *** type dummy"
    ]
    ran = [{"argv": "ip -j -d link show", "stdin": []},
           {"argv": "ip -batch -", "stdin": ["link add name xHunte type dummy"]}]  # fmt: skip
    assert command_lines(["ip link add name xHunte type dummy"], ran, check=True) == [
        "    [dim]$[/] ip -j -d link show",
        "    [dim]$[/] ip -batch -",
        "    [dim]|[/]   link add name *** type dummy",
        "    [dim]would run:[/] ip link add name *** type dummy",
    ]


class _Transport:
    name = "asyncssh"


def test_the_connection_described_without_its_password():
    spec = ConnectionSpec(name="kvm1", address="192.0.2.1", port=2222, user="ops",
                          password=Secret("Hunter2-secret"))  # fmt: skip
    said = describe(_Transport(), spec, TransportOptions(retries=1))
    assert said.startswith("[kvm1] SSH connect to ops@192.0.2.1:2222 with asyncssh: password,")
    assert "Hunter2" not in said and "1 retries" in said


def test_each_retried_attempt_is_said(caplog):
    async def refused():
        raise ConnectionRefusedError("connection refused")

    with caplog.at_level(logging.INFO, logger="vnetctl.ssh"), pytest.raises(ConnectionRefusedError):
        asyncio.run(with_retries(refused, retries=1, host="kvm1"))
    (said,) = [r.getMessage() for r in caplog.records if r.name == "vnetctl.ssh"]
    assert said.startswith("[kvm1] SSH attempt 1 failed (connection refused): retrying in ")


def test_a_hosts_notes_are_redacted():
    registry().add("Lock-holder-secret")
    console = Console(record=True, width=200, color_system=None)
    ConsoleReporter(console=console).note("kvm1", "waiting: held by Lock-holder-secret")
    assert console.export_text() == "note: [kvm1] waiting: held by ***\n"
