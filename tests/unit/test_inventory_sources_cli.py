"""Several -i on every command that takes an inventory, stacked as Ansible stacks them,
and the inventory from $ANSIBLE_INVENTORY or ansible.cfg when no -i is given; compared
with the real ansible-inventory and ansible-playbook --list-hosts on the same files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.unit.real_ansible import (
    ansible,
    clean_env,
    inventory_list,
    list_hosts,
    listed_hosts,
    needs_ansible,
)
from vnetctl.cli.common import run_context
from vnetctl.cli.main import main, parse_args
from vnetctl.drift.report import check_id

PLAYBOOK = """\
- name: everything
  hosts: all
  gather_facts: false
  tasks: []
- name: the kvm group
  hosts: kvm
  gather_facts: false
  tasks: []
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "a.yml").write_text(
        textwrap.dedent("""\
        all:
          children:
            kvm:
              hosts:
                h1: {mtu: 1500, only_a: 1}
                h2:
              vars: {site: par}
        """)
    )
    (tmp_path / "b.ini").write_text("h0\n[kvm]\nh3\nh1 mtu=9000\n[kvm:vars]\nsite=ber\n")
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    monkeypatch.chdir(tmp_path)
    for name in ("ANSIBLE_INVENTORY", "ANSIBLE_CONFIG", "ANSIBLE_FORKS", "ANSIBLE_REMOTE_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


TWO = ["-i", "a.yml", "-i", "b.ini"]
COMMANDS = [
    ["run", "site.yml"],
    ["drift", "site.yml"],
    ["mesh", "check", "site.yml"],
    ["snapshot"],
    ["stats"],
    ["facts"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_inventory_command_stacks_several_i(project, command):
    args = parse_args([*command, *TWO])
    inventory = run_context(args, check=True).inventory
    assert list(inventory.hosts) == ["h1", "h2", "h0", "h3"]
    assert inventory.hosts["h1"].vars["mtu"] == 9000  # the later source wins
    assert inventory.hosts["h1"].vars["only_a"] == 1
    assert args.inventory == ["a.yml", "b.ini"]


@needs_ansible
def test_stacked_sources_as_ansible_inventory_reads_them(project):
    ours = run_context(parse_args(["facts", *TWO]), check=True).inventory
    theirs = inventory_list(*TWO, cwd=project, env=clean_env(project))
    for host, variables in theirs["_meta"]["hostvars"].items():
        assert ours.hosts[host].vars == variables, host
    listed = {h for name, g in theirs.items() if name != "_meta" for h in g.get("hosts", [])}
    assert set(ours.hosts) == listed == {"h0", "h1", "h2", "h3"}


@needs_ansible
def test_list_hosts_of_stacked_sources_as_ansible_playbook(project, capsys):
    for limit in ([], ["--limit", "kvm:!h1"]):
        assert main(["run", "site.yml", *TWO, "--list-hosts", *limit]) == 0
        ours = capsys.readouterr().out
        theirs = list_hosts(project / "site.yml", *TWO, *limit, cwd=project, env=clean_env(project))
        assert [sorted(p) for p in listed_hosts(ours)] == [sorted(p) for p in theirs]


def test_drift_check_of_two_sources_is_its_own_check(project):
    one = check_id("site.yml", "a.yml", None)
    assert check_id("site.yml", "a.yml,b.ini", None) not in (
        one,
        check_id("site.yml", "b.ini", None),
    )
    assert one == check_id("site.yml", str(project / "a.yml"), None)  # as before: resolved


def test_inventory_from_ansible_inventory_then_ansible_cfg(project, monkeypatch, capsys):
    (project / "ansible.cfg").write_text("[defaults]\ninventory = a.yml\nunknown_key = 1\n")
    assert run_context(parse_args(["facts"]), check=True).inventory.hosts.keys() == {"h1", "h2"}
    monkeypatch.setenv("ANSIBLE_INVENTORY", "b.ini,a.yml")  # env beats the file
    assert list(run_context(parse_args(["facts"]), check=True).inventory.hosts) == [
        "h0",
        "h3",
        "h1",
        "h2",
    ]
    args = parse_args(["facts", "-i", "b.ini"])  # -i beats both
    assert list(run_context(args, check=True).inventory.hosts) == ["h0", "h3", "h1"]


@needs_ansible
def test_ansible_cfg_inventory_as_ansible_playbook_reads_it(project, monkeypatch, capsys):
    sub = project / "conf"
    sub.mkdir()
    (sub / "ansible.cfg").write_text("[defaults]\ninventory = ../a.yml,../b.ini\n")
    env = clean_env(project, ANSIBLE_CONFIG=str(sub / "ansible.cfg"))
    theirs = list_hosts(project / "site.yml", cwd=project, env=env)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(sub))  # a directory: its ansible.cfg
    assert main(["run", "site.yml", "--list-hosts"]) == 0
    assert [sorted(p) for p in listed_hosts(capsys.readouterr().out)] == [sorted(p) for p in theirs]


def test_no_inventory_anywhere_says_where_one_may_come_from(project, capsys):
    assert main(["stats"]) == 1
    assert "no inventory given: -i PATH" in capsys.readouterr().err


@needs_ansible
@pytest.mark.parametrize("argv", [["-i", "n1,n2:2222,"], ["-i", "n1,n2:2222,", "-i", "a.yml"]])
def test_a_host_list_as_ansible_reads_it(project, capsys, argv):
    """`-i h1,h2:2222,` alone or beside a file. (ansible-inventory also reads the current
    directory's group_vars/, as beside a playbook: vnetctl reads only the inventory's.)"""
    assert main(["inventory", *argv, "--list"]) == 0
    ours = capsys.readouterr().out
    real = ansible("ansible-inventory", "--list", *argv, cwd=project, env=clean_env(project))
    assert ours == real.stdout
    assert '"ansible_port": 2222' in ours
