"""Playbook shapes the loader and renderer refuse or reshape, that a mutation pass found
no test for (each case fails with its check deleted)."""

from __future__ import annotations

import pytest
from fake_catalog import CATALOG

from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- hosts: all\n  tasks:\n    - just a string\n",
         "book.yml:3: play 'all': a task must be a mapping (`- name: ...` then one module), "
         "got 'just a string'"),
        ("- hosts: all\n  tasks:\n    - name: [a]\n      link: {name: eth0}\n",
         "book.yml:3: play 'all': task name must be a string"),
        ("- just a string\n",
         "book.yml:1: a play must be a mapping with 'hosts' and 'tasks', got 'just a string'"),
        ("- hosts: all\n  tasks:\n    - link: {name: eth0}\n      when: [1]\n",
         "book.yml:4: play 'all' task 'link': when must be a Jinja expression or a list of "
         "them, e.g. `when: uplink is defined`"),
        ("- hosts: all\n  tasks:\n    - link: {1: eth0}\n",
         "book.yml:3: play 'all' task 'link': argument name 1 must be a string"),
    ],
)  # fmt: skip
def test_shapes_the_loader_refuses(tmp_path, text, expected):
    book = tmp_path / "book.yml"
    book.write_text(text)
    with pytest.raises(InputError) as info:
        load_playbook(book, CATALOG)
    assert str(info.value).replace(str(book), "book.yml") == expected


def test_omit_inside_a_list_or_a_mapping_leaves_the_item_out(tmp_path):
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    kvm1:\n")
    book = tmp_path / "book.yml"
    book.write_text(
        "- hosts: all\n  tasks:\n"
        "    - linux_bridge:\n"
        "        name: br0\n"
        "        ports: [eth1, '{{ spare | default(omit) }}']\n"
        "    - debug: {msg: {a: 1, b: '{{ omit }}'}}\n"
    )
    catalog = {**CATALOG, "debug": {"msg": {"type": "raw"}}}
    plans = plan_playbook(
        load_playbook(book, catalog), load_inventory(tmp_path / "hosts.yml"), catalog
    )
    bridge, debug = plans[0].tasks["kvm1"]
    assert bridge.args["ports"] == ["eth1"] and debug.args["msg"] == {"a": 1}
