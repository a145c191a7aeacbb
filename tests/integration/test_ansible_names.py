"""The module files under a real ansible-playbook (no vnetctl controller): bad names are
refused on the host, and vxlan_mesh, with its own module_utils file, still runs."""

from __future__ import annotations

import json

import pytest
from test_ansible_compat import ansible_playbook

from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab


def test_names_are_refused_on_the_host_and_the_mesh_runs_under_ansible(lab3, fresh_hosts, tmp_path):
    h1, h2 = lab3.hosts[0], lab3.hosts[1]
    book = tmp_path / "names.yml"
    bad = ["-v", "help", "brü", "br#x", "abcdefghijklmnop", "brz type bridge\\nnetns add vnxa"]
    tasks = "".join(
        f'    - linux_bridge: {{name: "{name}"}}\n      ignore_errors: true\n' for name in bad
    )
    book.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n" + tasks + "    - vxlan_mesh:\n"
        "        name: ans\n"
        f"        local: {h1.address}\n"
        f"        peers: [{h2.address}]\n"
        "        segments: [{vni: 300, bridge: br-ans300}]\n"
    )
    run = ansible_playbook(lab3, str(book))
    out = run.stdout + run.stderr
    failed = [line for line in out.splitlines() if "FAILED! =>" in line]
    assert len(failed) == len(bad), out
    assert all("is not a valid interface name" in line for line in failed), out
    assert run.returncode == 0 and "ignored=6" in out, out
    links = {
        link["ifname"]: link
        for link in json.loads(host_exec(lab3.name, h1.name, ["ip", "-j", "link"]).stdout)
    }
    assert set(links) == {"lo", "eth0", "eth1", "eth2", "vxlan300", "br-ans300"}
    assert links["vxlan300"]["ifalias"] == "vnetctl-mesh:ans"
    assert links["vxlan300"]["master"] == "br-ans300"
    assert "vnxa" not in host_exec(lab3.name, h1.name, ["ip", "netns", "list"]).stdout
