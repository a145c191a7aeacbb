"""VMs found on the hosts (libvirt's status files, recorded) join security groups on the
controller: by their vnetctl metadata and port group, merged with the declared VMs;
groups by the inventory variables of the host; and the libvirt hook's templates match a
starting domain's metadata and port group (vnetctl/fleet/microseg/discover)."""

from __future__ import annotations

import json
import sys

from tests.unit.test_hostnet import TRACE_FIXTURES, libvirt_nics
from tests.unit.test_microseg_resolve import CATALOG, expand

sg = CATALOG.load("security_groups")
guests = sys.modules["vnet_guests"]
H1 = libvirt_nics(TRACE_FIXTURES / "libvirt_h1")  # web1: tier=db on br-vx100 (vm1p)
DB = [{"name": "db", "members": {"metadata": {"tier": "db"}}},
      {"name": "web", "members": {"name": "web-*"},
       "egress": [{"to": ["db"], "proto": "tcp", "ports": [5432]}]}]  # fmt: skip


def with_bridge(bridge):
    return [dict(n, bridge=bridge if n["bridge"] == "br-vx100" else n["bridge"]) for n in H1]


def test_a_domain_only_found_on_its_host_is_a_member_by_its_metadata(capsys):
    args = expand(DB, found={"kvm3": {"libvirt_nics": with_bridge("br-vm")}})
    (port,) = args["kvm3"]["ports"]  # web1's NIC on the task's bridge; virbr0's is not
    assert port["mac"] == "52:54:00:aa:00:01" and port["port"] == "vm1p"
    assert port["groups"] == ["db"]
    # no addresses: a member by MAC, no peer address for web's rule, said once
    (web,) = args["kvm1"]["ports"]
    assert web["egress"][0]["peers"] == []
    said = capsys.readouterr().err
    assert said.count("holds VMs found on their hosts without declared addresses") == 1
    assert "web1 (kvm3)" in said
    # what the snapshot keeps is what was declared, not what was found
    assert args["kvm3"]["declaration"]["vms"] == []


def test_a_declared_vm_wins_by_mac_and_takes_what_it_left_unset_from_its_host():
    nics = [dict(n, mac="52:54:00:00:00:11") if n["dev"] == "vm1p" else n
            for n in with_bridge("br-vm")]  # fmt: skip
    args = expand(DB, found={"kvm1": {"libvirt_nics": nics}})
    (web,) = [p for p in args["kvm1"]["ports"] if p["mac"] == "52:54:00:00:00:11"]
    assert web["groups"] == ["db", "web"] and web["port"] == "vm1p"  # metadata from libvirt
    (rule,) = web["egress"]
    assert rule["peers"] == ["10.0.0.11/32"]  # its declared address


def test_a_discovered_mac_declared_on_another_host_stays_the_declared_vm():
    nics = [dict(n, mac="52:54:00:00:00:31") if n["dev"] == "vm1p" else n
            for n in with_bridge("br-vm")]  # fmt: skip
    args = expand(DB, found={"kvm3": {"libvirt_nics": nics}})  # db-1 is kvm2's
    assert args["kvm3"]["ports"] == []


def test_a_group_by_the_inventory_variables_of_the_host():
    groups = [{"name": "k2", "members": {"vars": {"ansible_host": "10.98.0.2"}}}]
    args = expand(groups)
    assert [p["mac"] for p in args["kvm2"]["ports"]] == ["52:54:00:00:00:31"]
    assert args["kvm1"]["ports"] == [] and args["kvm3"]["ports"] == []
    assert [t["group"] for t in args["kvm2"]["templates"]] == ["k2"]
    assert args["kvm1"]["templates"] == []


def test_the_hook_joins_a_domain_by_its_metadata_and_port_group():
    templates = expand(DB + [{"name": "bk", "members": {"port_group": "backup"}}])["kvm1"][
        "templates"
    ]
    xml = (TRACE_FIXTURES / "libvirt_h1" / "qemu" / "web1.xml").read_text()
    meta = guests.metadata_in(xml)
    assert meta == {"tier": "db", "app": "shop&co"}
    joined = sg._joined(templates, "web1", "52:54:00:aa:00:01", meta, None)
    assert [t["group"] for t in joined] == ["db"]
    joined = sg._joined(templates, "web1", "52:54:00:aa:00:11", {}, "backup")
    assert [t["group"] for t in joined] == ["bk"]
    assert sg._joined(templates, "other", "52:54:00:aa:00:99", {"tier": "web"}, None) == []


class Recorded:
    """Facts holding only the hook's port records (vnet_vm_attach's probe)."""

    def __init__(self, records):
        self.data = {"libvirt": True, "files": {}, "policies": {},
                     "ports": {p: json.dumps(r) for p, r in records.items()}}  # fmt: skip

    def get(self, name):
        assert name == "vm_attach"
        return self.data


def test_a_port_the_hook_recorded_with_metadata_is_claimed_by_its_group():
    params = {"ports": [], "templates": expand(DB)["kvm1"]["templates"]}
    db = {"mac": "52:54:00:aa:00:01", "domain": "x", "metadata": {"tier": "db"},
          "port_group": None}  # fmt: skip
    other = dict(db, metadata={"tier": "web"})
    facts = Recorded({"vnet5": db, "vnet6": other, "vnet7": {"mac": db["mac"], "domain": "x"}})
    assert sg.claims(params, "vnet5", facts)
    assert not sg.claims(params, "vnet6", facts)
    assert not sg.claims(params, "vnet7", facts)  # recorded before metadata was: no member
