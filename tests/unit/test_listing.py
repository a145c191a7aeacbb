"""`vnetctl run --list-hosts/--list-tasks/--list-tags` (ansible-playbook's format, no host
contacted) and `--start-at-task`."""

from __future__ import annotations

import textwrap

import pytest
from fake_catalog import CATALOG

from vnetctl.cli.main import main
from vnetctl.playbook.listing import start_at
from vnetctl.playbook.loader import load_playbook

BOOK = """\
- name: bridges
  hosts: kvm
  tags: [net]
  serial: [1, "50%"]
  roles: [base]
  tasks:
    - name: VM bridge
      linux_bridge: {name: br-vm}
      tags: [bridge]
    - name: storage mtu
      link: {name: eth2, mtu: 9000}
      loop: [1]
      tags: [mtu]
- name: edge
  hosts: edge1
  tasks:
    - name: edge mtu
      link: {name: eth1, mtu: 1500}
"""
INVENTORY = """\
all:
  children:
    kvm:
      hosts: {kvm1: {ansible_host: 192.0.2.1}, kvm2: {ansible_host: 192.0.2.2},
              kvm3: {ansible_host: 192.0.2.3}}
    edge:
      hosts: {edge1: {ansible_host: 192.0.2.4}}
"""


@pytest.fixture
def book(tmp_path):
    (tmp_path / "book.yml").write_text(BOOK)
    (tmp_path / "hosts.yml").write_text(INVENTORY)
    role = tmp_path / "roles" / "base" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text("- name: uplink up\n  link: {name: eth1, admin_state: up}\n")
    return tmp_path


def run(capsys, book, *options) -> tuple[int, str, str]:
    code = main(["run", str(book / "book.yml"), "-i", str(book / "hosts.yml"), *options])
    out, err = capsys.readouterr()
    return code, out.replace(str(book / "book.yml"), "book.yml"), err


def test_list_hosts_and_tasks_as_ansible_playbook_prints_them(book, capsys):
    code, out, _ = run(capsys, book, "--list-hosts", "--list-tasks")
    assert code == 0
    assert out == textwrap.dedent("""\

        playbook: book.yml

          play #1 (kvm): bridges\tTAGS: [net]
            pattern: ['kvm']
            hosts (3):
              kvm1
              kvm2
              kvm3
            batches (3, serial [1, '50%']): kvm1 | kvm2 | kvm3
            tasks:
              base : uplink up\tTAGS: [net]
              VM bridge\tTAGS: [bridge, net]
              storage mtu\tTAGS: [mtu, net]

          play #2 (edge1): edge\tTAGS: []
            pattern: ['edge1']
            hosts (1):
              edge1
            tasks:
              edge mtu\tTAGS: []
        """)


def test_list_tasks_and_tags_keep_what_tags_keep_and_limit_limits(book, capsys):
    code, out, _ = run(capsys, book, "--list-tags", "--list-tasks", "--tags", "mtu",
                       "--limit", "kvm2")  # fmt: skip
    assert code == 0
    assert "      storage mtu\tTAGS: [mtu, net]\n      TASK TAGS: [mtu, net]\n" in out
    assert "VM bridge" not in out and "uplink up" not in out
    code, out, _ = run(capsys, book, "--list-hosts", "--limit", "kvm2")
    assert "hosts (1):\n      kvm2\n    batches (1, serial [1, '50%']): kvm2\n" in out


def test_a_listing_of_a_bad_playbook_is_bad_input(book, capsys):
    (book / "book.yml").write_text(BOOK.replace("mtu: 9000", "mtu: '{{ nope }}'"))
    code, out, err = run(capsys, book, "--list-tasks")
    assert code == 1 and out == ""
    assert "book.yml:11: play 'bridges' task 'storage mtu': hosts kvm1, kvm2, kvm3: " in err


@pytest.mark.parametrize(
    ("pattern", "first"),
    [
        ("VM bridge", [("bridges", "VM bridge"), ("bridges", "storage mtu"), ("edge", "edge mtu")]),
        ("storage*", [("bridges", "storage mtu"), ("edge", "edge mtu")]),
        ("base : uplink up", [("bridges", "base : uplink up"), ("bridges", "VM bridge"),
                              ("bridges", "storage mtu"), ("edge", "edge mtu")]),
        ("uplink up", [("bridges", "base : uplink up"), ("bridges", "VM bridge"),
                       ("bridges", "storage mtu"), ("edge", "edge mtu")]),
        ("edge mtu", [("edge", "edge mtu")]),
    ],
)  # fmt: skip
def test_start_at_task_leaves_out_what_comes_before(book, pattern, first):
    plays = start_at(load_playbook(book / "book.yml", CATALOG), pattern)
    assert [(p.display_name, t.display_name) for p in plays for t in p.tasks] == first


def test_start_at_a_task_that_is_not_there_is_bad_input(book, capsys):
    code, _, err = run(capsys, book, "--start-at-task", "edge MTU", "--check")
    assert code == 1
    assert err.strip() == (
        "ERROR: --start-at-task: no task matches 'edge MTU' (did you mean 'edge mtu'?); "
        "tasks: base : uplink up, VM bridge, storage mtu, edge mtu"
    )
