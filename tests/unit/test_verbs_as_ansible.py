"""debug, assert, fail, set_fact, include_vars and the filters dict2items, items2dict
and lookup('file'|'env'), against the real ansible-playbook (ansible-core 2.19 from the
lock, .venv-ansible) on the same playbook, run with `-c local` on localhost: it contacts
nothing, and these verbs run on the controller in both."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook

ROOT = Path(__file__).parents[2]
ANSIBLE = ROOT / ".venv-ansible" / "bin" / "ansible-playbook"
BOOK = """\
- hosts: localhost
  gather_facts: false
  vars:
    ports: {eth1: 9000, eth2: 1500}
    uplink: eth1
  tasks:
    - include_vars: {file: net.yml}
    - set_fact: {mtu: "{{ ports[uplink] - 50 }}", who: fact}
    - debug: {msg: "{{ mtu }} {{ who }} {{ vlan_base }} {{ names }}"}
      vars: {who: task}
    - debug: {var: mtu}
    - debug: {var: nope}
    - include_vars: {file: net.yml, name: net}
    - debug: {var: net.names}
    - debug: {msg: "{{ ports | dict2items }}"}
    - debug:
        msg: "{{ ports | dict2items(key_name='dev', value_name='mtu')
                 | items2dict(key_name='dev', value_name='mtu') }}"
    - debug: {msg: "{{ lookup('file', 'net.yml') }}"}
    - debug: {msg: "{{ lookup('env', 'VERBS_PROBE') }}"}
    - debug:
    - assert: {that: [mtu | int > 1000, uplink in ports], success_msg: fine}
    - assert: {that: [mtu > 1000], quiet: true}
    - fail: {msg: "not {{ uplink }}"}
      when: uplink != 'eth1'
    - assert: {that: [mtu | int > 1000, mtu > 9000], fail_msg: "too small: {{ mtu }}"}
    - debug: {msg: never}
"""


def ansible_results(tmp_path: Path) -> list[tuple]:
    env = dict(os.environ, VERBS_PROBE="probe", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_DISPLAY_SKIPPED_HOSTS="1", ANSIBLE_RETRY_FILES_ENABLED="0")  # fmt: skip
    run = subprocess.run([str(ANSIBLE), "-i", "localhost,", "-c", "local", "book.yml"],
                         cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr  # the last assert fails
    found = []
    line = r"^(ok|fatal|skipping): \[localhost\](?:: FAILED!)?(?: => (\{.*?^\}))?"
    for match in re.finditer(line, run.stdout, re.M | re.S):
        body = json.loads(match.group(2)) if match.group(2) else {}
        found.append((match.group(1), body))
    return found


def vnetctl_results(tmp_path: Path) -> list[tuple]:
    (tmp_path / "hosts.yml").write_text("all: {hosts: {localhost: {}}}\n")
    catalog = Catalog()
    os.environ["VERBS_PROBE"] = "probe"
    plans = plan_playbook(load_playbook(tmp_path / "book.yml", catalog),
                          load_inventory(tmp_path / "hosts.yml"), catalog)  # fmt: skip
    found = []
    for task in plans[0].tasks["localhost"]:
        result = task.result
        state = "fatal" if result["failed"] else "ok"
        if task.module == "debug" and "var" in task.args:
            found.append((state, {task.args["var"]: result["msg"].split(": ", 1)[1]}))
        elif task.module == "debug":
            found.append((state, {"msg": task.args.get("msg", "Hello world!")}))
        elif task.module in ("assert", "fail"):
            body = {"msg": result["msg"]} if result.get("shown") or result["failed"] else {}
            found.append((state, body))
        else:
            found.append((state, {}))
    return found


@pytest.mark.skipif(not ANSIBLE.exists(), reason="run scripts/setup.sh --test: .venv-ansible")
def test_the_verbs_say_what_ansible_playbook_says(tmp_path, monkeypatch):
    monkeypatch.setenv("VERBS_PROBE", "probe")
    (tmp_path / "book.yml").write_text(BOOK)
    (tmp_path / "net.yml").write_text("vlan_base: 100\nnames: [a, b]\n")
    theirs, ours = ansible_results(tmp_path), vnetctl_results(tmp_path)
    assert ("skipping", {}) in theirs  # vnetctl leaves a task `when` skips out of the plan
    theirs = [found for found in theirs if found[0] != "skipping"]
    for _state, body in theirs:  # what only the output differs in
        body.pop("changed", None), body.pop("assertion", None), body.pop("evaluated_to", None)
        if "nope" in body:  # 2.19: "<< error 1 - 'nope' is undefined >>"
            body["nope"] = body["nope"].replace("error 1 - ", "")
    for _state, body in ours:
        for key, value in body.items():
            if key != "msg" and isinstance(value, str) and value.startswith(("[", "{", "8")):
                body[key] = json.loads(value)
    assert ours == theirs
