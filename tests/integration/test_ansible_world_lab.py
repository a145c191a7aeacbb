"""An Ansible user's project on real lab hosts: an executable inventory script, several
stacked sources, an ansible.cfg naming the inventory (no -i), a subscript in --limit, and
a host that cannot be reached said as a sentence with its host:port."""

from __future__ import annotations

import json
import sys

import pytest

from vnetctl.cli.main import main

pytestmark = pytest.mark.lab

BOOK = "- hosts: lab\n  tasks:\n    - link: {name: eth2, mtu: 1500, admin_state: up}\n"


def connection_vars(lab) -> dict[str, object]:
    return {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(lab.key_path),
        "vnetctl_known_hosts": str(lab.known_hosts_path),
        "vnetctl_persist": "none",
    }


def hostvars(lab) -> dict[str, dict]:
    found = {}
    for host in lab.hosts:
        address, port = host.ssh_endpoint
        found[host.name] = {"ansible_host": address, "ansible_port": port}
    return found


def recapped(output: str) -> set[str]:
    """The hosts the recap's table lists (a name, then its counts)."""
    rows = [line.split() for line in output.splitlines()]
    return {row[0] for row in rows if len(row) > 2 and row[1].isdigit() and row[2].isdigit()}


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_an_inventory_script_reaches_the_hosts(lab3, fresh_hosts, tmp_path, capsys):
    listing = {
        "lab": {"hosts": list(lab3.host_names), "vars": connection_vars(lab3)},
        "_meta": {"hostvars": hostvars(lab3)},
    }
    script = tmp_path / "cmdb.py"
    script.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(listing))})\n")
    script.chmod(0o755)
    (tmp_path / "book.yml").write_text(BOOK)
    code, output = run(capsys, "run", str(tmp_path / "book.yml"), "-i", str(script),
                       "--limit", "lab[-1]", "--check")  # fmt: skip
    assert code == 0, output
    assert recapped(output) == {lab3.host_names[-1]}, output


def test_stacked_sources_from_ansible_cfg_without_i(
    lab3, fresh_hosts, tmp_path, capsys, monkeypatch
):
    folder = tmp_path / "project"
    (folder / "inventory" / "group_vars").mkdir(parents=True)
    lines = ["[lab]"] + [
        f"{name} ansible_host={v['ansible_host']} ansible_port={v['ansible_port']}"
        for name, v in hostvars(lab3).items()
    ]
    (folder / "inventory" / "hosts.ini").write_text("\n".join(lines) + "\n")
    (folder / "inventory" / "group_vars" / "all.yml").write_text(json.dumps(connection_vars(lab3)))
    (folder / "edge.ini").write_text(f"[edge]\n{lab3.host_names[1]}\n")
    (folder / "ansible.cfg").write_text(
        "[defaults]\ninventory = inventory/hosts.ini,edge.ini\nforks = 1\n"
    )
    (folder / "book.yml").write_text(BOOK.replace("hosts: lab", "hosts: lab:&edge"))
    monkeypatch.chdir(folder)
    monkeypatch.delenv("ANSIBLE_INVENTORY", raising=False)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    code, output = run(capsys, "run", "book.yml", "--check")
    assert code == 0, output
    assert recapped(output) == {lab3.host_names[1]}, output
    code, output = run(capsys, "inventory", "--graph", "edge")
    assert (code, output) == (0, f"@edge:\n  |--{lab3.host_names[1]}\n")


def test_a_host_that_refuses_is_said_with_its_address_and_port(lab3, fresh_hosts, tmp_path, capsys):
    name = lab3.host_names[0]
    address, port = lab3.hosts[0].ssh_endpoint
    inventory = tmp_path / "inv.yml"
    inventory.write_text(json.dumps({"lab": {"hosts": {name: {
        **connection_vars(lab3), "ansible_host": address, "ansible_port": 1}}}}))  # fmt: skip
    (tmp_path / "book.yml").write_text(BOOK)
    code, output = run(capsys, "run", str(tmp_path / "book.yml"), "-i", str(inventory),
                       "--retries", "0")  # fmt: skip
    assert code == 3, output
    assert f"{address}:1 refused the connection: no SSH server listens on that port" in output
    assert "Errno" not in output
