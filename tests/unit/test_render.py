"""Rendering plays per host: variables, native types, when, tags, errors before any host."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fake_catalog import CATALOG as MODULES

from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.extra_vars import parse_extra_vars
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import PlayPlan, plan_playbook
from vnetctl.playbook.tags import should_run

ROOT = Path(__file__).parents[2]
CATALOG = {**MODULES, "debug": {"msg": {"type": "raw"}}}
INVENTORY = """\
all:
  vars:
    vm_mtu: 9000
  children:
    kvm:
      vars:
        uplink: eth1
      hosts:
        kvm1: {ansible_host: 10.213.0.1}
        kvm2: {ansible_host: 10.213.0.2, uplink: eth2}
    edge:
      hosts:
        edge1: {vm_mtu: 1500}
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return load_inventory(path)


def plan(tmp_path, inventory, playbook: str, **options) -> list[PlayPlan]:
    path = tmp_path / "book.yml"
    path.write_text(textwrap.dedent(playbook))
    return plan_playbook(load_playbook(path, CATALOG), inventory, CATALOG, **options)


def plan_error(tmp_path, inventory, playbook: str, **options) -> str:
    with pytest.raises(InputError) as info:
        plan(tmp_path, inventory, playbook, **options)
    return str(info.value).replace(str(tmp_path / "book.yml"), "book.yml")


def msgs(plans: list[PlayPlan]) -> dict[str, list]:
    return {h: [t.args.get("msg") for t in ts] for h, ts in plans[0].tasks.items()}


def test_example_inventory_with_site_playbook():
    inv = load_inventory(ROOT / "inventory" / "example.yml")
    plays = load_playbook(ROOT / "playbooks" / "site.yml", CATALOG | {"link": {
        "name": {"type": "str", "required": True}, "mtu": {"type": "int"},
        "admin_state": {"type": "str", "choices": ["up", "down"]}}})  # fmt: skip
    (result,) = plan_playbook(plays, inv, CATALOG, limit="rack2", tags=["bridge"])
    assert result.hosts == ["r2-kvm01", "r2-kvm02"]
    (task,) = result.tasks["r2-kvm01"]
    assert task.args == {
        "name": "br-vm", "ports": ["eth1"], "mtu": 9000, "stp": False, "forward_delay": 0.0,
        "state": "present",
    }  # fmt: skip
    assert (task.index, task.name, task.module) == (0, "VM bridge with its uplink", "linux_bridge")


def test_native_types_and_rendering_through_lists_and_dicts(tmp_path, inventory):
    result = plan(
        tmp_path,
        inventory,
        """\
        - hosts: kvm1
          vars:
            ports: [eth1, eth2]
            zero_name: "010"
          tasks:
            - linux_bridge:
                name: "br-{{ uplink }}"
                mtu: "{{ vm_mtu }}"
                ports: "{{ ports }}"
                stp: "{{ vm_mtu > 1500 }}"
                forward_delay: "{{ 1 + 0.5 }}"
            - debug:
                msg:
                  mtu: "{{ vm_mtu }}"
                  list: ["{{ vm_mtu }}", "x{{ vm_mtu }}", 3]
                  name: "{{ zero_name }}"
                  plain: "no template"
        """,
    )
    bridge, debug = result[0].tasks["kvm1"]
    assert bridge.args == {
        "name": "br-eth1", "mtu": 9000, "ports": ["eth1", "eth2"], "stp": True,
        "forward_delay": 1.5, "state": "present",
    }  # fmt: skip
    assert debug.args["msg"] == {
        "mtu": 9000, "list": [9000, "x9000", 3], "name": "010", "plain": "no template",
    }  # fmt: skip
    assert type(debug.args["msg"]["mtu"]) is int


def test_variables_are_per_host_and_lazy(tmp_path, inventory):
    result = plan(
        tmp_path,
        inventory,
        """\
        - hosts: all
          vars:
            bridge_mtu: "{{ vm_mtu + 100 }}"
            label: "{{ inventory_hostname }}-{{ bridge_mtu }}"
          tasks:
            - debug: {msg: "{{ label }}"}
        """,
    )
    assert msgs(result) == {
        "kvm1": ["kvm1-9100"], "kvm2": ["kvm2-9100"], "edge1": ["edge1-1600"],
    }  # fmt: skip


def test_magic_variables(tmp_path, inventory):
    result = plan(
        tmp_path,
        inventory,
        """\
        - hosts: kvm2
          tasks:
            - debug:
                msg:
                  me: "{{ inventory_hostname }}"
                  mine: "{{ group_names }}"
                  kvm: "{{ groups['kvm'] }}"
                  all: "{{ groups.all }}"
                  other: "{{ hostvars['kvm1'].uplink }}"
                  other_addr: "{{ hostvars.edge1.vm_mtu }}"
                  dir: "{{ playbook_dir == inventory_dir }}"
                  range: "{{ range(2) | list }}"
        """,
    )
    assert msgs(result)["kvm2"] == [{
        "me": "kvm2", "mine": ["kvm"], "kvm": ["kvm1", "kvm2"],
        "all": ["kvm1", "kvm2", "edge1"], "other": "eth1", "other_addr": 1500, "dir": True,
        "range": [0, 1],
    }]  # fmt: skip


def test_omit_leaves_the_argument_out(tmp_path, inventory):
    result = plan(
        tmp_path,
        inventory,
        """\
        - hosts: kvm1
          tasks:
            - linux_bridge:
                name: br0
                mtu: "{{ bridge_mtu | default(omit) }}"
                state: "{{ omit }}"
        """,
    )
    assert result[0].tasks["kvm1"][0].args == {"name": "br0", "state": "present"}


def test_undefined_variable_names_file_line_play_task_host(tmp_path, inventory):
    message = plan_error(
        tmp_path,
        inventory,
        """\
        - name: VM networks
          hosts: edge1
          tasks:
            - name: uplink bridge
              linux_bridge:
                name: br-vm
                ports: ["{{ uplink }}"]
        """,
    )
    assert message == (
        "book.yml:7: play 'VM networks' task 'uplink bridge': host edge1: argument 'ports': "
        "'uplink' is undefined"
    )


def test_errors_of_all_hosts_are_found_and_grouped(tmp_path, inventory):
    message = plan_error(
        tmp_path,
        inventory,
        """\
        - hosts: all
          tasks:
            - link: {name: "{{ storage_nic }}"}
            - link: {name: eth0, mtu: "{{ uplink }}"}
        """,
    )
    assert message.splitlines() == [
        "4 problems; nothing was run:",
        "  book.yml:3: play 'all' task 'link': hosts kvm1, kvm2, edge1: argument 'name': "
        "'storage_nic' is undefined",
        "  book.yml:4: play 'all' task 'link': host kvm1: argument 'mtu' of module "
        "'link': expected an integer, got 'eth1' (string)",
        "  book.yml:4: play 'all' task 'link': host kvm2: argument 'mtu' of module "
        "'link': expected an integer, got 'eth2' (string)",
        "  book.yml:4: play 'all' task 'link': host edge1: argument 'mtu': 'uplink' is undefined",
    ]


def test_undefined_inside_a_variable_says_which_variable(tmp_path, inventory):
    message = plan_error(
        tmp_path,
        inventory,
        """\
        - hosts: kvm1
          vars:
            bridge_mtu: "{{ base_mtu + 100 }}"
          tasks:
            - link: {name: eth1, mtu: "{{ bridge_mtu }}"}
        """,
    )
    assert message == (
        "book.yml:5: play 'kvm1' task 'link': host kvm1: argument 'mtu': 'base_mtu' is "
        "undefined (via variable 'bridge_mtu' at book.yml:3)"
    )


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ("    a: '{{ a }}'\n", "variable 'a' refers to itself: a -> a"),
        ("    a: '{{ b }}'\n    b: '{{ [a] }}'\n", "variable 'a' refers to itself: a -> b -> a"),
        ("    vm_mtu: '{{ vm_mtu + 1 }}'\n", "variable 'vm_mtu' refers to itself"),
    ],
)
def test_self_reference_is_an_error(tmp_path, inventory, variables, words):
    playbook = "- hosts: kvm1\n  vars:\n" + variables + "  tasks:\n    - debug: {msg: '{{ a }}'}\n"
    if "vm_mtu" in variables:
        playbook = playbook.replace("{{ a }}", "{{ vm_mtu }}")
    assert words in plan_error(tmp_path, inventory, playbook)


def test_template_syntax_and_runtime_errors(tmp_path, inventory):
    message = plan_error(
        tmp_path, inventory, "- hosts: kvm1\n  tasks:\n    - debug: {msg: '{{ vm_mtu + }}'}\n"
    )
    assert message.startswith("book.yml:3: play 'kvm1' task 'debug': host kvm1: argument 'msg':")
    assert "template syntax error: unexpected" in message
    message = plan_error(
        tmp_path, inventory, "- hosts: kvm1\n  tasks:\n    - debug: {msg: '{{ uplink + 1 }}'}\n"
    )
    assert 'can only concatenate str (not "int") to str' in message


def test_when(tmp_path, inventory):
    result = plan(
        tmp_path,
        inventory,
        """\
        - hosts: all
          tasks:
            - debug: {msg: jumbo}
              when: vm_mtu > 1500
            - debug: {msg: both}
              when: [vm_mtu > 1500, "'kvm' in group_names"]
            - debug: {msg: flag}
              when: flag | default('no') | bool
            - debug: {msg: never}
              when: false
            - debug: {msg: "{{ uplink }}"}
              when: uplink is defined
        """,
        extra_vars={"flag": "yes"},
    )
    assert msgs(result) == {
        "kvm1": ["jumbo", "both", "flag", "eth1"],
        "kvm2": ["jumbo", "both", "flag", "eth2"],
        "edge1": ["flag"],
    }
    assert [t.index for t in result[0].tasks["edge1"]] == [2]


@pytest.mark.parametrize(
    ("when", "words"),
    [
        (
            "uplink",
            "when: 'uplink' gave str 'eth1', not true or false (write e.g. `uplink | bool`)",
        ),
        ("nope > 1", "when: 'nope' is undefined"),
        ("vm_mtu >", "when: template syntax error"),
    ],
)
def test_bad_when_is_an_error_at_its_line(tmp_path, inventory, when, words):
    message = plan_error(
        tmp_path,
        inventory,
        f"- hosts: kvm1\n  tasks:\n    - debug: {{msg: x}}\n      when: {when}\n",
    )
    assert message.startswith("book.yml:4: play 'kvm1' task 'debug': host kvm1: ")
    assert words in message


TAGGED = """\
- hosts: kvm1
  tags: [net]
  tasks:
    - {debug: {msg: bridge}, tags: [bridge]}
    - {debug: {msg: mtu}, tags: [mtu, bridge]}
    - {debug: {msg: always}, tags: [always]}
    - {debug: {msg: never}, tags: [never, debugging]}
    - {debug: {msg: plain}}
"""


@pytest.mark.parametrize(
    ("tags", "skip", "expected"),
    [
        (None, None, ["bridge", "mtu", "always", "plain"]),
        (["bridge"], None, ["bridge", "mtu", "always"]),
        (["mtu"], None, ["mtu", "always"]),
        (["net"], None, ["bridge", "mtu", "always", "never", "plain"]),  # the play's tags
        (["debugging"], None, ["always", "never"]),
        (None, ["bridge"], ["always", "plain"]),
        (["bridge"], ["mtu"], ["bridge", "always"]),
        (None, ["always"], ["bridge", "mtu", "plain"]),
        (["all"], ["all"], ["always"]),
        (["untagged"], None, ["always"]),  # every task has the play's tag
    ],
)  # each case checked against ansible-playbook 2.19
def test_tags_and_skip_tags(tmp_path, inventory, tags, skip, expected):
    result = plan(tmp_path, inventory, TAGGED, tags=tags, skip_tags=skip)
    assert msgs(result)["kvm1"] == expected


@pytest.mark.parametrize(
    ("tags", "skip", "expected"),
    [
        (["brige"], None, "--tags: unknown tag 'brige' (did you mean 'bridge'?); tags in the "
                          "playbook: always, bridge, debugging, mtu, net, never"),
        (None, ["mut"], "--skip-tags: unknown tag 'mut' (did you mean 'mtu'?)"),
    ],
)  # fmt: skip
def test_unknown_tags_are_errors(tmp_path, inventory, tags, skip, expected):
    assert plan_error(tmp_path, inventory, TAGGED, tags=tags, skip_tags=skip).startswith(expected)


def test_should_run_untagged_and_tagged():
    assert should_run(set(), {"untagged"}) and not should_run({"a"}, {"untagged"})
    assert should_run({"a"}, {"tagged"}) and not should_run(set(), {"tagged"})
    assert not should_run({"a"}, None, {"tagged"}) and should_run(set(), None, {"tagged"})
    assert should_run({"always"}, {"x"}, {"y"}) and not should_run({"always", "y"}, None, {"y"})


def test_limit_and_play_host_patterns(tmp_path, inventory):
    book = "- hosts: all\n  tasks: [{debug: {msg: x}}]\n- hosts: edge\n  tasks: []\n"
    first, second = plan(tmp_path, inventory, book, limit="kvm*:!kvm2")
    assert (first.hosts, second.hosts) == (["kvm1"], [])
    assert list(first.tasks) == ["kvm1"]
    message = plan_error(tmp_path, inventory, "- name: p\n  hosts: kvm,kmv3\n  tasks: []\n")
    assert message.startswith("book.yml:2: play 'p': unknown host pattern 'kmv3'")
    message = plan_error(tmp_path, inventory, book, limit="kvm9")
    assert message.startswith("--limit: unknown host pattern 'kvm9'")


def test_extra_vars_beat_play_vars_and_are_in_hostvars(tmp_path, inventory):
    result = plan(
        tmp_path,
        inventory,
        """\
        - hosts: kvm1
          vars: {vm_mtu: 1600}
          tasks:
            - debug: {msg: ["{{ vm_mtu }}", "{{ hostvars.kvm2.vm_mtu }}"]}
        """,
        extra_vars=parse_extra_vars(["vm_mtu=1400"]),
    )
    assert msgs(result)["kvm1"] == [[1400, 1400]]


def test_many_problems_are_summarised(tmp_path):
    hosts = "".join(f"    h{i}:\n" for i in range(7))
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n" + hosts)
    inventory = load_inventory(tmp_path / "hosts.yml")
    tasks = "".join(f"    - debug: {{msg: '{{{{ undefined_{i} }}}}'}}\n" for i in range(12))
    with pytest.raises(InputError) as info:
        plan(tmp_path, inventory, "- hosts: all\n  tasks:\n" + tasks)
    lines = str(info.value).splitlines()
    assert lines[0] == "12 problems; nothing was run:"
    assert lines[1].endswith(
        "hosts h0, h1, h2, h3, h4 and 2 more: argument 'msg': 'undefined_0' is undefined"
    )
    assert len(lines) == 12 and lines[-1] == "  ... and 2 more"
    assert len(info.value.problems) == 12  # every problem, for tools
    assert str(info.value.problems[11].where).endswith("book.yml:14")
