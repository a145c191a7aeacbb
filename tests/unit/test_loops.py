"""`loop` and `loop_control`, with Ansible's semantics: what each item binds, which items
run, how they are named and keyed, and what is refused before any host."""

from __future__ import annotations

import textwrap

import pytest
from fake_catalog import CATALOG as MODULES

from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook

MESH_SPEC = {"name": {"type": "str", "required": True},
             "members": {"type": "str", "controller": True}}  # fmt: skip
CATALOG = {**MODULES, "debug": {"msg": {"type": "raw"}}, "vxlan_mesh": MESH_SPEC}
INVENTORY = """\
all:
  hosts:
    kvm1:
      bridges: [{name: br-a, ports: [eth1]}, {name: br-b}]
    kvm2:
      bridges: [{name: br-c}]
    kvm3:
      bridges: []
"""


def plan(tmp_path, playbook: str, **options):
    (tmp_path / "hosts.yml").write_text(INVENTORY)
    book = tmp_path / "book.yml"
    book.write_text(textwrap.dedent(playbook))
    plays = load_playbook(book, CATALOG)
    return plan_playbook(plays, load_inventory(tmp_path / "hosts.yml"), CATALOG, **options)


def error(tmp_path, playbook: str, **options) -> str:
    with pytest.raises(InputError) as info:
        plan(tmp_path, playbook, **options)
    return str(info.value).replace(str(tmp_path / "book.yml"), "book.yml")


def test_each_host_gets_one_task_per_item_of_its_own_list(tmp_path):
    (result,) = plan(tmp_path, """\
        - hosts: all
          tasks:
            - name: first
              debug: {msg: before}
            - name: bridges
              linux_bridge:
                name: "{{ item.name }}"
                ports: "{{ item.ports | default([]) }}"
              loop: "{{ bridges }}"
            - name: last
              debug: {msg: after}
        """)  # fmt: skip
    kvm1 = [(t.index, t.name, t.args.get("name"), t.item) for t in result.tasks["kvm1"]]
    assert kvm1 == [
        (0, "first", None, None),
        (1, "bridges (item={'name': 'br-a', 'ports': ['eth1']})", "br-a", 0),
        (4, "bridges (item={'name': 'br-b'})", "br-b", 1),  # 1 + 3 tasks * item 1
        (2, "last", None, None),
    ]
    assert result.tasks["kvm1"][1].args["ports"] == ["eth1"]
    assert [t.args.get("name") for t in result.tasks["kvm2"]] == [None, "br-c", None]
    assert [t.name for t in result.tasks["kvm3"]] == ["first", "last"]


def test_loop_var_index_var_label_and_when_per_item(tmp_path):
    (result,) = plan(tmp_path, """\
        - hosts: kvm1
          tasks:
            - name: mtu
              link:
                name: "{{ nic.dev }}"
                mtu: "{{ 1500 + i }}"
              loop: [{dev: eth1}, {dev: eth2}, {dev: eth3}]
              loop_control: {loop_var: nic, index_var: i, label: "{{ nic.dev }}"}
              when: nic.dev != 'eth2'
        """)  # fmt: skip
    tasks = result.tasks["kvm1"]
    assert [(t.name, t.args["mtu"], t.item) for t in tasks] == [
        ("mtu (item=eth1)", 1500, 0),
        ("mtu (item=eth3)", 1502, 2),
    ]


def test_extended_loop_and_task_vars_that_refer_to_the_item(tmp_path):
    (result,) = plan(tmp_path, """\
        - hosts: kvm1
          tasks:
            - debug:
                msg: "{{ prefix }}{{ ansible_loop.index }}/{{ ansible_loop.length }}
                      {{ ansible_loop.first }} {{ ansible_loop.previtem }}"
              vars: {prefix: "{{ item }}-"}
              loop: [a, b]
              loop_control: {extended: true}
        """)  # fmt: skip
    assert [t.args["msg"] for t in result.tasks["kvm1"]] == ["a-1/2 True None", "b-2/2 False a"]


def test_a_loop_variable_wins_over_an_extra_var_as_in_ansible(tmp_path):
    (result,) = plan(tmp_path, """\
        - hosts: kvm1
          tasks:
            - debug: {msg: "{{ item }}"}
              loop: [from-loop]
        """, extra_vars={"item": "from-e"})  # fmt: skip
    assert [t.args["msg"] for t in result.tasks["kvm1"]] == ["from-loop"]


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("    - debug: {msg: x}\n      loop: abc\n",
         "book.yml:4: play 'all' task 'debug': loop: expected a list, or a template that "
         "gives one (loop: \"{{ bridges }}\"), got string 'abc'"),
        ("    - debug: {msg: x}\n      loop: {a: 1}\n",
         "book.yml:4: play 'all' task 'debug': loop: expected a list, or a template that "
         "gives one (loop: \"{{ bridges }}\"), got mapping {'a': 1}"),
        ("    - debug: {msg: x}\n      loop_control: {loop_var: x}\n",
         "book.yml:4: play 'all' task 'debug': loop_control without loop"),
        ("    - debug: {msg: x}\n      loop: [1]\n      loop_control: {pause: 3}\n",
         "book.yml:5: play 'all' task 'debug': loop_control: pause is not supported: the "
         "items run one after another in the host's one process"),
        ("    - debug: {msg: x}\n      loop: [1]\n      loop_control: {loop_vr: x}\n",
         "book.yml:5: play 'all' task 'debug': loop_control: unknown key 'loop_vr' (did you "
         "mean 'loop_var'?) (it has loop_var, index_var, label, extended)"),
        ("    - debug: {msg: x}\n      loop: [1]\n      loop_control: {loop_var: 2x}\n",
         "book.yml:5: play 'all' task 'debug': loop_control: loop_var must be a variable "
         "name, got '2x'"),
        ("    - debug: {msg: x}\n      with_items: [1]\n",
         "book.yml:4: play 'all' task 'debug': unknown task keyword 'with_items': write "
         "`loop:` over a list (with_* lookups are not supported)"),
        ("    - vxlan_mesh: {name: m}\n      loop: [1, 2]\n",
         "book.yml:4: play 'all' task 'vxlan_mesh': loop: vxlan_mesh is planned across the "
         "fleet (its members): write one task per item"),
    ],
)  # fmt: skip
def test_loops_refused_when_loaded(tmp_path, task, expected):
    assert error(tmp_path, "- hosts: all\n  tasks:\n" + task) == expected


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("    - debug: {msg: x}\n      loop: \"{{ 'abc' }}\"\n",
         "book.yml:4: play 'all' task 'debug': hosts kvm1, kvm2, kvm3: loop: must give a "
         "list, got string abc"),
        ("    - debug: {msg: x}\n      loop: '{{ nothing }}'\n",
         "book.yml:4: play 'all' task 'debug': hosts kvm1, kvm2, kvm3: loop: 'nothing' is "
         "undefined"),
        ("    - linux_bridge: {name: br-x}\n      loop: [1, 2]\n",
         "book.yml:4: play 'all' task 'linux_bridge': hosts kvm1, kvm2, kvm3: loop: items '1' "
         "and '2' both declare linux_bridge 'br-x': each item must be its own object"),
        ("    - debug: {msg: x}\n      loop: [1]\n      loop_control: {loop_var: groups}\n",
         "book.yml:4: play 'all' task 'debug': hosts kvm1, kvm2, kvm3: loop_control: "
         "'groups' is a magic variable; name the loop variable otherwise"),
    ],
)  # fmt: skip
def test_loops_refused_per_host_before_any_host(tmp_path, task, expected):
    assert error(tmp_path, "- hosts: all\n  tasks:\n" + task) == expected


def test_a_when_of_an_import_holds_before_the_loop_is_rendered(tmp_path):
    """A host whose include condition is false never renders the loop (no error for an
    undefined list there), as Ansible never reads an include it skips."""
    (tmp_path / "inc.yml").write_text("- debug: {msg: '{{ item }}'}\n  loop: '{{ only_kvm1 }}'\n")
    (result,) = plan(tmp_path, """\
        - hosts: all
          tasks:
            - include_tasks: inc.yml
              when: inventory_hostname == 'kvm1'
              vars: {only_kvm1: [a, b]}
        """)  # fmt: skip
    assert {h: [t.args["msg"] for t in ts] for h, ts in result.tasks.items()} == {
        "kvm1": ["a", "b"], "kvm2": [], "kvm3": [],
    }  # fmt: skip


def test_two_items_declaring_one_route_are_refused_two_tables_are_two_routes(tmp_path):
    """A route is named by its destination, table and metric (the module's
    resource_name), not by a `name` argument: the real catalog says so."""
    from vnetctl.catalog import Catalog  # noqa: PLC0415

    (tmp_path / "hosts.yml").write_text(INVENTORY)
    book = tmp_path / "book.yml"
    route = "    - route: {dest: default, gateway: 10.0.0.1, table: '{{ item }}'}\n"
    for tables, refused in (("[100, 200]", False), ("[100, '100']", True)):
        book.write_text(f"- hosts: kvm1\n  tasks:\n{route}      loop: {tables}\n")
        plays = load_playbook(book, Catalog())
        if not refused:
            (result,) = plan_playbook(plays, load_inventory(tmp_path / "hosts.yml"), Catalog())
            assert [t.args["table"] for t in result.tasks["kvm1"]] == ["100", "200"]
            continue
        with pytest.raises(InputError, match="both declare route 'default table 100'"):
            plan_playbook(plays, load_inventory(tmp_path / "hosts.yml"), Catalog())
