"""Playbooks planned with no host, for the tests of the checking verbs and blocks: an
inventory of two hosts (kvm2 with its own mtu), files written beside the playbook."""

from __future__ import annotations

import textwrap

import pytest

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook

CATALOG = Catalog()
INVENTORY = """\
all:
  vars: {mtu: 9000, uplink: eth1}
  hosts:
    kvm1: {}
    kvm2: {mtu: 1500}
"""


def plan(tmp_path, playbook: str, files: dict | None = None, **options):
    (tmp_path / "hosts.yml").write_text(INVENTORY)
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "book.yml").write_text(textwrap.dedent(playbook))
    inventory = load_inventory(tmp_path / "hosts.yml")
    return plan_playbook(load_playbook(tmp_path / "book.yml", CATALOG), inventory, CATALOG,
                         **options)  # fmt: skip


def error(tmp_path, playbook: str, files: dict | None = None) -> str:
    with pytest.raises(InputError) as info:
        plan(tmp_path, playbook, files)
    return str(info.value).replace(str(tmp_path) + "/", "")


def results(plans, host: str, play: int = 0) -> list[dict | None]:
    return [t.result for t in plans[play].tasks[host]]
