"""The checking verbs (debug, assert, fail, set_fact, include_vars) run while planning,
`command` with register / changed_when / failed_when, and conditions on registered
results compiled for the host (vnetctl.playbook.verbs, vnetctl.playbook.runtime)."""

from __future__ import annotations

import pytest

from tests.unit.verb_plans import error, plan, results
from vnetctl.hostside import conditions
from vnetctl.runner.payload import task_record


def test_debug_msg_and_var(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: all
          tasks:
            - debug: {msg: "mtu {{ mtu }}"}
            - ansible.builtin.debug: {var: mtu}
            - debug: {var: nope}
            - debug:
        """)  # fmt: skip
    assert [r["msg"] for r in results(plans, "kvm2")] == [
        "mtu 1500", "mtu: 1500", "nope: << 'nope' is undefined >>", "Hello world!",
    ]  # fmt: skip
    assert all(r["shown"] and not r["failed"] and not r["changed"] for r in results(plans, "kvm1"))
    assert task_record(plans[0].tasks["kvm1"][0]) == {
        "index": 0, "module": "debug", "args": {}, "result": results(plans, "kvm1")[0],
    }  # fmt: skip


def test_set_fact_is_seen_by_later_tasks_and_plays_below_extra_vars(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: all
          tasks:
            - set_fact: {bridge_mtu: "{{ mtu - 50 }}", who: fact}
            - debug: {msg: "{{ bridge_mtu }} {{ who }}"}
              vars: {who: task}
        - hosts: kvm1
          tasks:
            - debug: {msg: "{{ bridge_mtu }}"}
        """, extra_vars={"who": "extra"})  # fmt: skip
    assert results(plans, "kvm1")[0]["msg"] == "set: bridge_mtu, who"
    assert results(plans, "kvm1")[1]["msg"] == "8950 extra"
    assert results(plans, "kvm2")[1]["msg"] == "1450 extra"
    assert results(plans, "kvm1", play=1)[0]["msg"] == "8950"


def test_set_fact_beats_task_vars(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: kvm1
          tasks:
            - set_fact: {who: fact}
            - debug: {msg: "{{ who }}"}
              vars: {who: task}
        """)  # fmt: skip
    assert results(plans, "kvm1")[1]["msg"] == "fact"  # as ansible-playbook says


def test_failed_assert_stops_its_host_only(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: all
          tasks:
            - link: {name: eth1, mtu: 1500}
            - assert:
                that: [mtu is defined, mtu >= 9000]
                fail_msg: "{{ inventory_hostname }} has mtu {{ mtu }}"
                success_msg: jumbo
            - link: {name: "{{ undefined_on_failed_host if mtu < 9000 else 'eth1' }}"}
        - hosts: all
          tasks:
            - link: {name: eth2}
        """)  # fmt: skip
    assert [t.module for t in plans[0].tasks["kvm2"]] == ["link", "assert"]
    assert results(plans, "kvm2")[1] == {"verb": True,
        "failed": True, "changed": False, "msg": "kvm2 has mtu 1500",
        "assertion": "mtu >= 9000", "evaluated_to": False,
    }  # fmt: skip
    assert results(plans, "kvm1")[1]["msg"] == "jumbo"
    assert len(plans[0].tasks["kvm1"]) == 3
    assert plans[1].tasks["kvm2"] == [] and len(plans[1].tasks["kvm1"]) == 1


def test_fail_and_when(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: all
          tasks:
            - fail: {msg: "MTU {{ mtu }} is too small"}
              when: mtu < 9000
            - fail:
              when: false
        """)  # fmt: skip
    assert results(plans, "kvm2") == [{"failed": True, "changed": False, "verb": True,
                                       "msg": "MTU 1500 is too small"}]  # fmt: skip
    assert plans[0].tasks["kvm1"] == []


def test_include_vars(tmp_path):
    files = {"vars/net.yml": "uplink: eth9\nvlans: [10, 20]\n"}
    plans = plan(tmp_path, """\
        - hosts: kvm1
          tasks:
            - debug: {msg: "{{ uplink }}"}
            - include_vars: net.yml
            - debug: {msg: "{{ uplink }} {{ vlans }}"}
            - include_vars: {file: vars/net.yml, name: net}
            - debug: {msg: "{{ net.vlans[1] }}"}
        """, files)  # fmt: skip
    assert [r["msg"] for r in results(plans, "kvm1")][::2] == ["eth1", "eth9 [10, 20]", "20"]
    assert "vars/net.yml: uplink, vlans" in results(plans, "kvm1")[1]["msg"]


def test_include_vars_errors(tmp_path):
    assert "include_vars: nope.yml: no such file" in error(tmp_path, """\
        - hosts: kvm1
          tasks: [{include_vars: nope.yml}]
        """)  # fmt: skip
    assert "the file name must be written out" in error(tmp_path, """\
        - hosts: kvm1
          tasks: [{include_vars: "{{ x }}.yml"}]
        """)  # fmt: skip


def test_assert_that_must_be_boolean(tmp_path):
    text = error(tmp_path, "- hosts: kvm1\n  tasks: [{assert: {that: uplink}}]\n")
    assert "assert: 'uplink' gave str 'eth1', not true or false" in text


def test_command_argv_only(tmp_path):
    text = error(tmp_path, "- hosts: kvm1\n  tasks: [{command: ip link}]\n")
    assert "command takes its argv as a list, and no shell" in text
    plans = plan(tmp_path, "- hosts: kvm1\n  tasks: [{command: {argv: [ip, link]}}]\n")
    task = plans[0].tasks["kvm1"][0]
    assert (task.module, task.name, task.args["argv"]) == (
        "host_command",
        "command",
        ["ip", "link"],
    )


def test_register_and_when_are_compiled_for_the_host(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: kvm1
          vars: {wanted: 0}
          tasks:
            - command: {argv: [ip, link, show, br0]}
              register: probe
              failed_when: probe.rc not in [0, 1]
              changed_when: false
            - linux_bridge: {name: br0}
              when: [mtu > 1000, probe.rc != wanted, "'UP' not in probe.stdout | trim"]
            - assert: {that: probe is succeeded, fail_msg: no probe}
        """)  # fmt: skip
    probe, bridge, check = plans[0].tasks["kvm1"]
    assert probe.register == "probe" and probe.changed_when == [["const", False]]
    assert probe.failed_when == [["cmp", "notin", ["var", "probe", ["rc"]],
                                  ["list", [["const", 0], ["const", 1]]]]]  # fmt: skip
    assert bridge.host_when == [
        ["cmp", "ne", ["var", "probe", ["rc"]], ["const", 0]],
        ["cmp", "notin", ["const", "UP"], ["filter", "trim", ["var", "probe", ["stdout"]]]],
    ]  # fmt: skip
    assert check.result["that_on_host"] == [["test", "succeeded", ["var", "probe", []]]]
    assert task_record(bridge)["host_when"] == bridge.host_when


@pytest.mark.parametrize(
    ("task", "says"),
    [
        (
            "link: {name: '{{ probe.stdout }}'}",
            "argument 'name' reads 'probe', a result registered",
        ),
        ("link: {name: eth1}\n      when: probe.stdout is match('x')", "its host evaluates it"),
        ("set_fact: {x: 1}\n      when: probe.rc == 0", "set_fact: its `when` reads a result"),
    ],
)
def test_what_a_registered_result_cannot_do(tmp_path, task, says):
    book = f"""\
- hosts: kvm1
  tasks:
    - command: {{argv: ["true"]}}
      register: probe
    - {task}
"""
    assert says in error(tmp_path, book)


def test_a_registered_result_stays_in_its_play(tmp_path):
    text = error(tmp_path, """\
        - hosts: kvm1
          tasks: [{command: {argv: ["true"]}, register: probe}]
        - hosts: kvm1
          tasks: [{link: {name: eth1}, when: probe.rc == 0}]
        """)  # fmt: skip
    assert "registered on the host in play 'kvm1'" in text


def test_changed_when_only_on_command(tmp_path):
    text = error(tmp_path, "- hosts: kvm1\n  tasks: [{link: {name: eth1}, changed_when: false}]\n")
    assert "unknown task keyword 'changed_when'" in text and "command has changed_when" in text


def test_fqcn_of_the_collection(tmp_path):
    plans = plan(tmp_path, "- hosts: kvm1\n  tasks: [{vnetctl.kvm.link: {name: eth1}}]\n")
    assert plans[0].tasks["kvm1"][0].module == "link"


def test_host_conditions():
    out = {"rc": 1, "stdout": " UP \n", "stdout_lines": ["UP"], "changed": True}
    registered = {"out": out, "skip": {"skipped": True, "changed": False}}
    rc = ["var", "out", ["rc"]]
    assert conditions.holds([["cmp", "in", rc, ["list", [["const", 0], ["const", 1]]]]], registered)
    assert conditions.holds([["test", "changed", ["var", "out", []]]], registered)
    assert not conditions.holds([["test", "failed", ["var", "out", []]]], registered)
    assert conditions.holds([["cmp", "eq", ["filter", "trim", ["var", "out", ["stdout"]]],
                              ["const", "UP"]]], registered)  # fmt: skip
    assert conditions.holds([["test", "undefined", ["var", "out", ["nope"]]]], registered)
    with pytest.raises(conditions.ConditionError, match="out.nope is undefined"):
        conditions.holds([["cmp", "eq", ["var", "out", ["nope"]], ["const", 1]]], registered)
    with pytest.raises(conditions.ConditionError, match="not true or false"):
        conditions.holds([rc], registered)
    with pytest.raises(conditions.FromSkipped):
        conditions.holds([["cmp", "eq", ["var", "skip", ["rc"]], ["const", 0]]], registered)


def test_the_host_decides_and_judges():
    registered = {"out": {"rc": 3, "changed": True}}
    when = [["cmp", "eq", ["var", "out", ["rc"]], ["const", 0]]]
    assert conditions.decided({"host_when": when}, registered)["skipped"]
    assert conditions.decided({"host_when": [["not", when[0]]]}, registered) is None
    verb = {"that_on_host": when, "fail_msg": "bad", "success_msg": "ok", "shown": False}
    assert conditions.decided({"result": verb}, registered)["msg"] == "bad"
    skipped = {"out": {"skipped": True}}
    assert conditions.decided({"host_when": when}, skipped)["msg"] == "skipped: out was skipped"
    result = {"rc": 1, "failed": True, "changed": True, "msg": "non-zero return code 1: x"}
    task = {"register": "me", "changed_when": [["const", False]],
            "failed_when": [["cmp", "gt", ["var", "me", ["rc"]], ["const", 1]]]}  # fmt: skip
    conditions.judged(task, result, registered)
    assert (result["failed"], result["changed"], result["msg"]) == (
        False,
        False,
        "rc=1 (failed_when does not hold)",
    )


def test_import_role_says_what_to_write(tmp_path):
    text = error(tmp_path, "- hosts: kvm1\n  tasks: [{import_role: {name: base}}]\n")
    assert "'import_role' is not supported: list the role under the play's roles:" in text
    text = error(tmp_path, "- hosts: kvm1\n  tasks: [{include_role: {name: base}}]\n")
    assert "'include_role' is not supported" in text


def test_debug_hides_secrets(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: kvm1
          vars: {vnetctl_secret_vars: [token], token: s3cr3t-value}
          tasks:
            - debug: {msg: "token is {{ token }}"}
            - debug: {var: token}
            - set_fact: {copy: "{{ token }}"}
            - debug: {msg: "{{ copy }}"}
        """)  # fmt: skip
    said = [r["msg"] for r in results(plans, "kvm1")]
    assert said == [
        "***",
        "token: ***",
        "set: copy",
        "***",
    ]  # a rendering that read a secret is one


def test_register_on_a_loop_keeps_every_item(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: kvm1
          tasks:
            - debug: {msg: "item {{ item }}"}
              loop: [1, 2]
              register: out
            - debug:
                msg: "{{ out.results | length }} {{ out.results[1].msg }} {{ out is failed }}"
            - command: {argv: ["true"]}
              loop: [a, b]
              register: probe
            - debug: {msg: ok}
              when: probe.results[1].rc == 0
        """)  # fmt: skip
    tasks = plans[0].tasks["kvm1"]
    assert tasks[2].result["msg"] == "2 item 2 False"
    assert [t.loop_of for t in tasks[3:5]] == [2, 2] and tasks[3].register == "probe"
    assert tasks[5].host_when == [["cmp", "eq", ["var", "probe", ["results", 1, "rc"]],
                                   ["const", 0]]]  # fmt: skip


def test_command_cmd_string_is_refused_with_the_argv_form(tmp_path):
    text = error(tmp_path, "- hosts: kvm1\n  tasks: [{command: {cmd: ip link}}]\n")
    assert "command takes its argv as a list, and no shell" in text and "'ip link'" in text


def test_debug_of_a_registered_result_says_where_it_is(tmp_path):
    book = """\
- hosts: kvm1
  tasks:
    - command: {argv: ["true"]}
      register: probe
    - debug: {var: probe.stdout}
"""
    text = error(tmp_path, book)
    assert "debug var reads 'probe', a result registered on the host" in text
    assert "stdout and stderr are in its own result (--format json)" in text


def test_hostvars_show_what_set_fact_set(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: kvm1
          tasks: [{set_fact: {role_of: leader}}]
        - hosts: kvm2
          tasks: [{debug: {msg: "{{ hostvars['kvm1'].role_of }}"}}]
        """)  # fmt: skip
    assert results(plans, "kvm2", play=1)[0]["msg"] == "leader"


def test_shell_says_to_write_command_argv(tmp_path):
    text = error(tmp_path, "- hosts: kvm1\n  tasks: [{shell: ip link | grep UP}]\n")
    assert "'shell' is not supported: vnetctl runs no shell on a host" in text
