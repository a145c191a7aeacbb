"""traffic_shaping run by a real ansible-playbook from an Ansible library path (the
module_utils it imports travel with it), on a lab host: playbooks/nioc.yml unchanged."""

from __future__ import annotations

import json

import pytest
from test_ansible_compat import ansible_playbook, recap

from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab


def test_nioc_runs_unchanged_under_ansible(lab3, fresh_hosts):
    host = lab3.host_names[0]
    check = ansible_playbook(lab3, "playbooks/nioc.yml", "--check", "--diff")
    assert check.returncode == 0, check.stdout + check.stderr
    assert recap(check.stdout)["changed"] == 1 and "classes" in check.stdout
    qdiscs = json.loads(
        host_exec(lab3.name, host, ["tc", "-j", "qdisc", "show", "dev", "eth1"]).stdout
    )
    assert [q["kind"] for q in qdiscs] == ["noqueue"]  # check mode changed nothing

    first = ansible_playbook(lab3, "playbooks/nioc.yml")
    assert first.returncode == 0 and recap(first.stdout)["changed"] == 1, first.stdout
    second = ansible_playbook(lab3, "playbooks/nioc.yml", "-e", "migration_limit=200")
    assert second.returncode == 0 and recap(second.stdout)["changed"] == 1, second.stdout
    again = ansible_playbook(lab3, "playbooks/nioc.yml", "-e", "migration_limit=200")
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout
    shown = host_exec(lab3.name, host, ["tc", "class", "show", "dev", "eth1", "classid", "1:e092"])
    assert "ceil 200Mbit" in shown.stdout
