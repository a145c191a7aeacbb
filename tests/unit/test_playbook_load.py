"""Loading playbooks: structure, locations, and every bad input at its file:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_catalog import CATALOG

from vnetctl.errors import InputError
from vnetctl.playbook.loader import load_playbook
from vnetctl.yamlsrc import YamlList, YamlMap, load_yaml_text

ROOT = Path(__file__).parents[2]


def book(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "book.yml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = book(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_playbook(path, CATALOG)
    return str(info.value).replace(str(path), "book.yml").replace(str(tmp_path), "TMP")


def test_site_playbook_loads():
    plays = load_playbook(ROOT / "playbooks" / "site.yml", CATALOG)
    assert [p.name for p in plays] == ["VM networks"]
    bridge, nic = plays[0].tasks
    assert (bridge.module, bridge.index, nic.module, nic.index) == ("linux_bridge", 0, "link", 1)
    assert bridge.args["ports"] == ["{{ vm_uplink }}"] and bridge.tags == ["bridge"]
    assert plays[0].vars["vm_mtu"] == 9000


def test_plays_and_tasks_remember_their_lines(tmp_path):
    path = book(
        tmp_path,
        "- name: VM networks\n"  # 1
        "  hosts: kvm\n"  # 2
        "  vars:\n"  # 3
        "    mtu: 9000\n"  # 4
        "  tags: net\n"  # 5
        "  tasks:\n"  # 6
        "    - name: uplink bridge\n"  # 7
        "      linux_bridge:\n"  # 8
        "        name: br-vm\n"  # 9
        "        mtu: '{{ mtu }}'\n"  # 10
        "      when: mtu > 1500\n"  # 11
        "      tags: [bridge, mtu]\n"  # 12
        "    - facts:\n",  # 13
    )
    (play,) = load_playbook(path, CATALOG)
    assert (str(play.where), str(play.hosts_where), str(play.var_where["mtu"])) == (
        f"{path}:1", f"{path}:2", f"{path}:4",
    )  # fmt: skip
    assert play.tags == ["net"] and play.hosts == "kvm"
    task, facts = play.tasks
    assert str(task.where) == f"{path}:7"
    assert str(task.where_of("mtu")) == f"{path}:10"
    assert str(task.where_of("stp")) == f"{path}:7"  # not given: the task's line
    assert (task.name, task.when, task.tags) == ("uplink bridge", ["mtu > 1500"], ["bridge", "mtu"])
    assert (facts.module, facts.args, facts.display_name, facts.index) == ("facts", {}, "facts", 1)
    assert play.context(task) == "play 'VM networks' task 'uplink bridge'"


def test_task_forms(tmp_path):
    path = book(
        tmp_path,
        "- hosts: all\n  tasks:\n"
        "    - link: name=eth1 mtu=9000 admin_state=up\n"
        "    - link: {name: eth2}\n      when: [a is defined, b | bool]\n      tags: 'x, y'\n"
        "    - link: {name: eth3}\n      when: false\n"
        "- hosts: [rack1, rack2]\n  gather_facts: false\n",
    )
    first, second = load_playbook(path, CATALOG)
    kv, listed, literal = first.tasks
    assert kv.args == {"name": "eth1", "mtu": 9000, "admin_state": "up"}
    assert listed.when == ["a is defined", "b | bool"] and listed.tags == ["x", "y"]
    assert literal.when == ["False"]
    assert first.display_name == "all" and second.hosts == ["rack1", "rack2"]
    assert second.tasks == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "- name: VM networks\n  hosts: all\n  tasks:\n"
            "    - name: uplink bridge\n      linux_brige: {name: br-vm, ports: [eth1]}\n",
            "book.yml:4: play 'VM networks' task 'uplink bridge': unknown module 'linux_brige' "
            "(did you mean 'linux_bridge'?) (known: assert, command, debug, facts, fail, "
            "include_vars, link, linux_bridge, set_fact)",
        ),
        (
            "- hosts: all\n  tasks:\n    - name: t\n      link: {name: a}\n      facts:\n",
            "book.yml:5: play 'all' task 't': one task runs one module, this one names 2: "
            "link, facts (write one task per module)",
        ),
        (
            "- hosts: all\n  tasks:\n    - name: t\n      when: x\n",
            "book.yml:3: play 'all' task 't': task names no module (known: assert, command, "
            "debug, facts, fail, include_vars, link, linux_bridge, set_fact)",
        ),
        (
            "- hosts: all\n  tasks:\n    - name: t\n      link: {name: a}\n      tag: x\n",
            "book.yml:5: play 'all' task 't': unknown task keyword 'tag' (did you mean "
            "'tags'?): a task has one module and optionally name, when, tags, vars, loop, "
            "loop_control, register, changed_when, failed_when",
        ),
        (
            "- hosts: all\n  tasks:\n    - name: t\n      link: {name: a}\n      failed_when: r\n",
            "book.yml:5: play 'all' task 't': unknown task keyword 'failed_when': a module says "
            "failed from the state it reads (command has failed_when)",
        ),
        (
            "- hosts: all\n  tasks:\n    - link:\n        name: eth1\n        mut: 9000\n",
            "book.yml:5: play 'all' task 'link': unknown argument 'mut' for module 'link' "
            "(did you mean 'mtu'?); known: admin_state, mtu, name",
        ),
        (
            "- hosts: all\n  tasks:\n    - link:\n        name: eth1\n        mtu: 9000.5\n",
            "book.yml:5: play 'all' task 'link': argument 'mtu' of module 'link': expected an "
            "integer, got 9000.5 (number)",
        ),
        (
            "- hosts: all\n  tasks:\n    - link:\n        mtu: 9000\n",
            "book.yml:3: play 'all' task 'link': missing required argument 'name' for module "
            "'link'",
        ),
        (
            "- hosts: all\n  tasks:\n    - link:\n        name: eth1\n        name: eth2\n",
            "book.yml:5: duplicate key 'name' (first defined at line 4)",
        ),
        (
            "- hosts: all\n  tasks:\n    - link: {name: eth1\n",
            "book.yml:4: YAML syntax error: while parsing a flow mapping: did not find "
            "expected ',' or '}'",
        ),
        (
            "- hosts: all\n  become: true\n",
            "book.yml:2: unknown play keyword 'become': set ansible_become (or vnetctl_become) "
            "for the hosts in the inventory",
        ),
        (
            "- name: p\n  host: all\n",
            "book.yml:2: play 'p': unknown play keyword 'host' (did you mean 'hosts'?): a play "
            "has name, hosts, vars, vars_files, roles, pre_tasks, tasks, post_tasks, tags, "
            "serial, max_fail_percentage, health_gates, confirm_timeout, gather_facts, persist",
        ),
        (
            "- name: p\n  tasks: []\n",
            "book.yml:1: play 'p': a play needs `hosts:` with a host pattern (e.g. `all`, a "
            "group, `kvm*`)",
        ),
        ("- hosts: all\n  tasks: {a: 1}\n", "book.yml:2: play 'all': tasks must be a list"),
        ("- hosts: all\n  vars: [a]\n", "book.yml:2: play 'all': vars must be a mapping"),
        (
            "hosts: all\n",
            "book.yml:1: a playbook is a list of plays (`- hosts: ...`), got a mapping",
        ),
        ("", "book.yml:1: the playbook is empty: expected a list of plays"),
        (
            "- import_playbook: other.yml\n",
            "book.yml:1: import_playbook: TMP/other.yml: no such file",
        ),
        (
            "- hosts: all\n  tasks:\n    - link: {name: a}\n      when: '{{ x }}'\n",
            "book.yml:4: play 'all' task 'link': when is a Jinja expression already: write "
            "`x == 1`, not `{{ x == 1 }}` (got '{{ x }}')",
        ),
        (
            "- hosts: all\n  tasks:\n    - link: {name: a}\n      tags: {a: 1}\n",
            "book.yml:4: play 'all' task 'link': tags must be a string or a list of strings",
        ),
        (
            "- hosts: all\n  tasks:\n    - link: [name, a]\n",
            "book.yml:3: play 'all' task 'link': the arguments of module 'link' must be a "
            "mapping, got list ['name', 'a']",
        ),
        (
            "- hosts: all\n  tasks:\n    - link: name=a mtu\n",
            "book.yml:3: play 'all' task 'link': arguments of link: expected key=value (the "
            "key a variable name), got 'mtu'",
        ),
        (
            "- hosts: all\n  vars:\n    vm-mtu: 1\n",
            "book.yml:3: play 'all': variable name 'vm-mtu' is not usable in templates "
            "(letters, digits, _)",
        ),
    ],
)
def test_bad_playbooks_say_file_line_play_and_task(tmp_path, text, expected):
    assert load_error(tmp_path, text) == expected


def test_yaml_loader_remembers_lines():
    data = load_yaml_text("a:\n  b: 1\n  c:\n    - x\n    - y: 2\n", "f.yml")
    assert isinstance(data, YamlMap) and isinstance(data["a"]["c"], YamlList)
    assert str(data.where_of("a")) == "f.yml:1" and str(data["a"].where_of("c")) == "f.yml:3"
    assert (
        str(data["a"]["c"].where_of(1)) == "f.yml:5" and str(data["a"]["c"][1].where) == "f.yml:5"
    )
    assert data == {"a": {"b": 1, "c": ["x", {"y": 2}]}}
