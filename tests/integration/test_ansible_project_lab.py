"""Issue 32's "Done when": an Ansible user's existing project runs unchanged under both
tools. The project, as an operator keeps it: an ansible.cfg (inventory, vault password
file, SSH key, become, the known_hosts file in ssh_args, the collections path), an INI
inventory of group `kvm`, a group_vars directory whose vars.yml names vault.yml's value
(Ansible's documented pattern) and vault.yml (encrypted by the real ansible-vault) holds
sudo's password for a user whose sudo asks for one, and a site.yml calling vnetctl's
modules by FQCN. No vnetctl variable, no -i, no vault flag.

- `vnetctl inventory --list` and `ansible-inventory --list` give the same hosts, groups
  and variables (the vault's value redacted by vnetctl; the rest compared); --graph the
  same text.
- `vnetctl run site.yml` applies to the first host, a second run is all ok;
  `ansible-playbook site.yml` with the collection vnetctl.kvm applies to the second, a
  second run changed=0; both runs see the project's variables alike (a debug task).
- The two hosts' links read back (`ip -j -d link`) are the same; each tool's --check
  finds both hosts converged; `vnetctl drift site.yml` finds both in sync.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_become import PASSWORD, sudo_password_user
from tests.integration.test_collection_lab import installed, recap, tool  # noqa: F401
from tests.labhosts import own_lab
from vnetctl.lab import host_exec
from vnetctl.lab.sshd import PASSWORD_USER

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
VAULT_PW = "Pr0ject-vault"
SITE = """\
- name: VM networks
  hosts: kvm
  tasks:
    - name: VM bridge with its uplink
      vnetctl.kvm.linux_bridge:
        name: "{{ vm_bridge }}"
        ports: ["{{ vm_uplink }}"]
        mtu: "{{ vm_mtu }}"
        stp: false
        forward_delay: 0
    - name: storage NIC jumbo frames
      vnetctl.kvm.link:
        name: "{{ storage_nic }}"
        mtu: "{{ vm_mtu }}"
        admin_state: up
    - name: the project's variables
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }}: {{ vm_bridge }} {{ vm_uplink }} {{ vm_mtu }}
          as {{ ansible_user }}"
    - name: sudo's password from the vault
      ansible.builtin.assert:
        that: [ansible_become_password | length > 8]
        quiet: true
"""
GROUP_VARS = """\
vm_bridge: br-vm
vm_uplink: eth1
vm_mtu: 9000
storage_nic: eth2
ansible_become_password: "{{ vault_become_password }}"
"""


def write_project(top: Path, state, collections: Path) -> None:
    known_hosts = state.known_hosts_path
    (top / "ansible.cfg").write_text(
        "[defaults]\ninventory = hosts.ini\nvault_password_file = .vault_pass\n"
        f"collections_path = {collections}\nretry_files_enabled = False\nnocolor = True\n"
        f"host_key_checking = True\nprivate_key_file = {state.key_path}\n"
        "\n[privilege_escalation]\nbecome = true\n"
        "\n[ssh_connection]\npipelining = True\n"
        f"ssh_args = -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes "
        "-o ControlMaster=no\n"
    )
    lines = ["[kvm]"]
    for host in state.hosts:
        address, port = host.ssh_endpoint
        lines.append(f"{host.name} ansible_host={address} ansible_port={port}")
    lines += ["", "[kvm:vars]", f"ansible_user={PASSWORD_USER}"]
    (top / "hosts.ini").write_text("\n".join(lines) + "\n")
    (top / ".vault_pass").write_text(VAULT_PW + "\n")
    (top / ".vault_pass").chmod(0o600)
    group = top / "group_vars" / "kvm"
    group.mkdir(parents=True)
    (group / "vars.yml").write_text(GROUP_VARS)
    vault = group / "vault.yml"
    vault.write_text(f"vault_become_password: {PASSWORD}\n")
    done = tool("ansible-vault", "encrypt", str(vault), cwd=top)
    assert done.returncode == 0, done.stderr
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    (top / "site.yml").write_text(SITE)


@pytest.fixture(scope="module")
def project(lab_required, tmp_path_factory, installed):  # noqa: F811
    folder = tmp_path_factory.mktemp("ap")
    with own_lab("ap", folder / "lab", hosts=2) as state:
        top = folder / "project"
        top.mkdir()
        write_project(top, state, installed)
        with (
            sudo_password_user(state.name, state.host_names[0]),
            sudo_password_user(state.name, state.host_names[1]),
        ):
            yield state, top


def env_of(top: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(COLUMNS="200", NO_COLOR="1", PYTHONPATH=str(ROOT))
    return env


def vnetctl(top: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "vnetctl", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=top,
                          env=env_of(top), check=False)  # fmt: skip


def ansible(top: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    return tool(name, *args, cwd=top, env=env_of(top))


def without_redacted(hostvars: dict, shown: dict) -> dict:
    """`hostvars` without the keys vnetctl printed redacted."""
    return {k: v for k, v in hostvars.items() if "***" not in str(shown.get(k, ""))}


def test_inventory_the_same_under_both_tools(project):
    state, top = project
    ours = vnetctl(top, "inventory", "--list")
    theirs = ansible(top, "ansible-inventory", "--list")
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    assert PASSWORD not in ours.stdout + ours.stderr
    mine, real = json.loads(ours.stdout), json.loads(theirs.stdout)
    assert mine["kvm"] == real["kvm"] == {"hosts": state.host_names}
    for host in state.host_names:
        shown = mine["_meta"]["hostvars"][host]
        assert shown["ansible_become_password"] == shown["vault_become_password"] == "***"
        assert real["_meta"]["hostvars"][host]["vault_become_password"] == PASSWORD
        assert without_redacted(shown, shown) == without_redacted(
            real["_meta"]["hostvars"][host], shown
        )
    assert mine.pop("_meta").keys() == real.pop("_meta").keys()
    assert mine == real  # the groups, their hosts and children
    graphs = [vnetctl(top, "inventory", "--graph"), ansible(top, "ansible-inventory", "--graph")]
    assert graphs[0].stdout == graphs[1].stdout


def links(state, host: str) -> dict[str, dict]:
    """What both tools set, read back: per link its MTU, bridge, state, flags, kind and
    the bridge's STP and forward delay."""
    read = host_exec(state.name, host, ["ip", "-j", "-d", "link"], check=True)
    found = {}
    for link in json.loads(read.stdout):
        info = link.get("linkinfo", {})
        data = info.get("info_data", {})
        found[link["ifname"]] = {
            "mtu": link["mtu"], "master": link.get("master"), "state": link["operstate"],
            "flags": sorted(link["flags"]), "kind": info.get("info_kind"),
            "stp": data.get("stp_state"), "forward_delay": data.get("forward_delay"),
        }  # fmt: skip
    return found


def test_vnetctl_and_ansible_playbook_same_end_state(project):
    state, top = project
    first, second = state.host_names
    took = {}
    started = time.monotonic()
    runs = [vnetctl(top, "run", "site.yml", "--limit", first) for _ in range(2)]
    took["vnetctl"] = time.monotonic() - started
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert PASSWORD not in run.stdout + run.stderr
    assert f"changed: [{first}] VM bridge with its uplink" in runs[0].stdout, runs[0].stdout
    assert "changed:" not in runs[1].stdout, runs[1].stdout
    assert f"{first}: br-vm eth1 9000 as {PASSWORD_USER}" in runs[1].stdout

    started = time.monotonic()
    runs = [ansible(top, "ansible-playbook", "site.yml", "--limit", second) for _ in range(2)]
    took["ansible-playbook"] = time.monotonic() - started
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    assert recap(runs[0].stdout)["changed"] == 2, runs[0].stdout
    assert recap(runs[1].stdout)["changed"] == 0, runs[1].stdout
    assert f"{second}: br-vm eth1 9000 as {PASSWORD_USER}" in runs[1].stdout

    applied = links(state, first)
    assert applied["br-vm"]["mtu"] == 9000 and applied["eth1"]["master"] == "br-vm"
    assert applied["eth2"]["mtu"] == 9000
    assert links(state, second) == applied

    for host in (first, second):  # a user whose sudo asks for the vault's password
        log = Path(state.host(host).sshd_log).read_text()
        assert f"Accepted publickey for {PASSWORD_USER}" in log

    # each tool finds the other's hosts converged
    checked = vnetctl(top, "run", "site.yml", "--check", "--diff")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "changed:" not in checked.stdout, checked.stdout
    checked = ansible(top, "ansible-playbook", "site.yml", "--check", "--diff")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    recaps = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", checked.stdout, re.M)
    assert sorted(recaps) == [(first, "0"), (second, "0")], checked.stdout
    drift = vnetctl(top, "drift", "site.yml")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    assert PASSWORD not in drift.stdout + drift.stderr
    assert "hosts: 2 checked, 2 in sync, 0 drifted" in drift.stdout, drift.stdout
    print(f"two runs each: {took}")
