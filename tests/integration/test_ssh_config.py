"""~/.ssh/config is honoured: an inventory that names a host only by an alias works,
with the address, user, key and known_hosts coming from the SSH client config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnetctl.cli.main import main

pytestmark = pytest.mark.lab

SITE = str(Path(__file__).parents[2] / "playbooks" / "site.yml")


@pytest.mark.parametrize("transport", ["asyncssh", "paramiko"])
def test_alias_resolved_through_ssh_config(
    lab3, fresh_hosts, capsys, tmp_path, monkeypatch, transport
):
    h1 = lab3.hosts[0]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(Path(lab3.known_hosts_path).read_text())
    (home / ".ssh" / "config").write_text(
        f"Host kvm-alias\n    HostName {h1.address}\n    User root\n"
        f"    IdentityFile {lab3.key_path}\n"
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    kvm-alias:\n")
    monkeypatch.setenv("HOME", str(home))

    code = main(
        [
            "run",
            SITE,
            "-i",
            str(inventory),
            "--transport",
            transport,
            "--format",
            "json",
            "--tags",
            "mtu",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    assert doc["stats"]["kvm-alias"]["changed"] == 1
