"""Security groups with VMs found on the hosts (issue 30), with a real libvirtd on two
lab hosts joined by a VXLAN mesh: a domain on the second host, not in the inventory's
`vms`, its vnetctl metadata set by `virsh metadata` (tier=db), started paused (libvirt
writes its status file and makes its tap as for a running guest, at no CPU). One run
makes it a db member: its chains in the host's nft table, entered by its MAC, with the
rule from the first host's declared web VM."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.labhosts import inventory_with, lab_skip_reason, own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec
from vnetctl.lab.vm.domain_xml import Guest, Nic, guest_mac
from vnetctl.lab.vm.guests import LabGuests

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
DOMAIN = "md-db"
XMLNS = "https://vnetctl.dev/xmlns/1"
WEB = {"name": "web-1", "mac": "52:54:00:6d:00:01", "addresses": ["192.168.100.11"]}
GROUPS = [
    {"name": "db", "members": {"metadata": {"tier": "db"}},
     "ingress": [{"from": ["web"], "proto": "tcp", "ports": [5432]}]},
    {"name": "web", "members": {"name": "web-*"}},
]  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    with own_lab("md", tmp_path_factory.mktemp("md"), hosts=2, libvirt=True) as state:
        assert main(["run", MESH, "-i", str(state.inventory_path), "--format", "json"]) == 0
        yield state


@pytest.fixture
def db_domain(lab):
    guests = LabGuests(lab.name, lab.host_names[1])
    try:
        guests.define(Guest(name=DOMAIN, nic=Nic(bridge="br-vx100")))
        guests.virsh("metadata", DOMAIN, "--uri", XMLNS, "--key", "vnetctl", "--config",
                     "--set", "<vm><tier>db</tier></vm>")  # fmt: skip
        guests.virsh("start", "--paused", DOMAIN)
        wait_until(lambda: guests.state(DOMAIN) == "paused", 30, f"{DOMAIN} paused")
        yield guests.taps(DOMAIN)[0]
    finally:
        guests.remove(DOMAIN)


def test_a_domain_found_by_its_metadata_is_a_member_after_one_run(lab, db_domain, tmp_path):
    h1, h2 = lab.host_names
    inventory = inventory_with(lab, tmp_path / "inventory.yml",
                               lambda h: {"vms": [WEB] if h == h1 else []})  # fmt: skip
    args = {"name": "found", "bridge": "br-vx100", "vms": "{{ vms }}", "groups": GROUPS}
    task = {"name": "groups", "security_groups": args}
    book = tmp_path / "play.yml"
    book.write_text(yaml.safe_dump([{"name": "groups", "hosts": "all", "tasks": [task]}]))
    assert main(["run", str(book), "-i", str(inventory), "--format", "json"]) == 0
    listed = host_exec(lab.name, h2, ["nft", "list", "table", "inet", "vnetctl_microseg"],
                       check=True).stdout  # fmt: skip
    mac = guest_mac(DOMAIN)
    print(listed)
    assert mac in listed, listed  # its chains are entered by its MAC
    chain = listed.split("chain in_" + mac.replace(":", ""), 1)[1].split("}", 1)[0]
    assert "192.168.100.11" in chain and "5432" in chain, chain
