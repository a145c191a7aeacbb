"""An Ansible user's inventory, variables and -u on real lab hosts: an INI directory
inventory with group_vars/ reaches the hosts, and a wrong port set by `-e` or by play
vars fails the run as unreachable, as ansible-playbook fails on the same input (it was
silently ignored before: the run succeeded on port 22)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_ansible_compat import ansible_playbook
from vnetctl.cli.main import main

pytestmark = pytest.mark.lab

BOOK = "- hosts: all\n  {vars}tasks:\n    - link: {{name: eth2, mtu: 1500, admin_state: up}}\n"
UNREACHABLE = 3  # vnetctl's exit code (README: exit codes); ansible-playbook's is 4


def ini_inventory(lab, base: Path) -> Path:
    """The lab's inventory written as an Ansible user would: INI plus group_vars/."""
    folder = base / "inventory"
    (folder / "group_vars").mkdir(parents=True)
    lines = ["[lab]"]
    for host in lab.hosts:
        address, port = host.ssh_endpoint
        lines.append(f"{host.name} ansible_host={address} ansible_port={port}")
    (folder / "hosts.ini").write_text("\n".join(lines) + "\n")
    (folder / "group_vars" / "all.yml").write_text(
        "ansible_user: root\n"
        f"ansible_ssh_private_key_file: {lab.key_path}\n"
        f"vnetctl_known_hosts: {lab.known_hosts_path}\n"
        "vnetctl_persist: none\n"
        "vnetctl_timeout: 5m\n"
    )
    return folder


def vnetctl_run(capsys, book: Path, inventory: Path, host: str, *extra: str) -> tuple[int, str]:
    code = main(["run", str(book), "-i", str(inventory), "--limit", host, "--check", *extra])
    out, err = capsys.readouterr()
    return code, out + err


def test_ini_directory_inventory_reaches_the_hosts(lab3, fresh_hosts, tmp_path, capsys):
    book = tmp_path / "book.yml"
    book.write_text(BOOK.format(vars=""))
    inventory = ini_inventory(lab3, tmp_path)
    code, output = vnetctl_run(capsys, book, inventory, lab3.host_names[0])
    assert code == 0, output


@pytest.mark.parametrize("where", ["extra vars", "play vars"])
def test_a_wrong_port_set_above_the_inventory_fails_like_ansible(
    lab3, fresh_hosts, tmp_path, capsys, where
):
    host = lab3.host_names[0]
    book = tmp_path / "book.yml"
    if where == "play vars":
        book.write_text(BOOK.format(vars="vars: {ansible_port: 2299}\n  "))
        extra: tuple[str, ...] = ()
    else:
        book.write_text(BOOK.format(vars=""))
        extra = ("-e", "ansible_port=2299")
    code, output = vnetctl_run(capsys, book, ini_inventory(lab3, tmp_path), host, *extra)
    assert code == UNREACHABLE, output
    assert "2299" in output or "unreachable" in output.lower(), output

    ansible = ansible_playbook(lab3, str(book), "--check", *extra)
    assert ansible.returncode == 4 and "UNREACHABLE" in ansible.stdout, ansible.stdout

    # and the right port set the same way still works
    good = str(lab3.hosts[0].ssh_endpoint[1])
    if where == "play vars":
        book.write_text(BOOK.format(vars="vars: {ansible_port: " + good + "}\n  "))
    else:
        extra = ("-e", f"ansible_port={good}")
    code, output = vnetctl_run(capsys, book, ini_inventory(lab3, tmp_path / "again"), host, *extra)
    assert code == 0, output


def test_user_flag_is_used_only_where_no_variable_names_the_user(
    lab3, fresh_hosts, tmp_path, capsys
):
    host = lab3.host_names[0]
    book = tmp_path / "book.yml"
    book.write_text(BOOK.format(vars=""))
    inventory = ini_inventory(lab3, tmp_path)
    code, output = vnetctl_run(capsys, book, inventory, host, "-u", "nosuchuser")
    assert code == 0, output  # group_vars/all.yml says ansible_user: root: it wins
    group_vars = inventory / "group_vars" / "all.yml"
    group_vars.write_text(group_vars.read_text().replace("ansible_user: root\n", ""))
    code, output = vnetctl_run(capsys, book, inventory, host, "-u", "nosuchuser")
    assert code == UNREACHABLE, output
    code, output = vnetctl_run(capsys, book, inventory, host, "-u", "root")
    assert code == 0, output


@pytest.mark.parametrize("keyword", ["", "persist: none\n  "])
def test_extra_vars_persist_beats_the_inventory_and_the_play_keyword(
    lab3, fresh_hosts, tmp_path, capsys, keyword
):
    """The lab's inventory says vnetctl_persist: none; `-e vnetctl_persist=networkd`
    writes the boot files all the same (it was ignored before), also over `persist:`."""
    host = lab3.host_names[0]
    root = tmp_path / "root"
    root.mkdir()
    book = tmp_path / "book.yml"
    book.write_text(BOOK.format(vars=keyword))
    inventory = ini_inventory(lab3, tmp_path)
    network = root / "etc" / "systemd" / "network" / "10-vnetctl-eth2.network"
    code = main(["run", str(book), "-i", str(inventory), "--limit", host,
                 "-e", f"vnetctl_persist_root={root}"])  # fmt: skip
    output = "".join(capsys.readouterr())
    assert code == 0 and not network.exists(), output  # the inventory's none
    code = main(["run", str(book), "-i", str(inventory), "--limit", host,
                 "-e", f"vnetctl_persist=networkd vnetctl_persist_root={root}"])  # fmt: skip
    output = "".join(capsys.readouterr())
    assert code == 0 and network.exists(), output
