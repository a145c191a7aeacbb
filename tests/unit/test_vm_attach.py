"""Attach-time policy, planned with no host (vnet_vm_attach, vnet_vm_hook): a port group's
run writes the libvirt hook, the code it runs (the very files the run has) and the
group's declaration; a file missing, changed or left over is drift; `state: absent`
removes the declaration, and the hook with the module's last group. The hook reads a
domain's NICs from libvirt's XML and picks each one's groups."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
LIB = CATALOG.host_lib()
FACTS = Path(__file__).parent / "fixtures" / "facts"
GROUP = {
    "name": "web",
    "bridge": "br-vm",
    "ports": ["vnet*"],
    "port_security": True,
    "isolated": True,
    "neigh_suppress": True,
    "guests": [
        {"port": "vnet0", "mac": "52:54:00:aa:00:00", "ips": ["10.50.0.10", "2001:db8::10"]}
    ],
}  # as the recorded host has it
POLICY = "/etc/vnetctl/attach/port_group/br-vm/web.json"
HOOK = "/etc/libvirt/hooks/qemu.d/vnetctl-port_group"


def attach():
    return CATALOG.load("port_group").attach


def facts(files=None, policies=None, ports=None):
    """The port group's recorded host with libvirt, and these hook files (digests)."""
    data = json.loads((FACTS / "thiskernel_port_group.json").read_text())
    data["vm_attach"] = {"libvirt": True, "files": files or {}, "policies": policies or {},
                         "ports": ports or {}}  # fmt: skip
    return LIB.Facts(data)


def installed():
    """The digests of the hook's files as this run writes them."""
    return {p: hashlib.sha256(t.encode()).hexdigest()
            for p, t in attach().hook_files("port_group").items()}  # fmt: skip


def declared(params=None):
    text = json.dumps(attach().policy(LIB.normalize_params(
        CATALOG.load("port_group").ARGUMENT_SPEC, params or GROUP)))  # fmt: skip
    return {POLICY: text}


def plan(params, found, target=None):
    planned = LIB.plan(CATALOG.load("port_group"), params, found, target=target)
    return [c["field"] for c in planned["changes"]], [" ".join(s) for s in planned["steps"]]


def test_a_first_run_writes_the_hook_its_code_and_the_groups_declaration():
    changes, steps = plan(GROUP, facts())
    assert changes[:2] == ["attach.files", "attach.hook"]
    assert changes[2:] and all(c.startswith("attach.policy.") for c in changes[2:])
    writes = [s.split()[2] for s in steps if s.startswith("file write")]
    assert writes[0] == HOOK and writes[-1] == POLICY
    code = sorted(Path(p).name for p in writes[1:-1])
    assert {"port_group.py", "vnet_host.py", "vnet_vm_hook.py", "vnet_nft_portsec.py",
            "vnet_secpolicy.py"} <= set(code)  # fmt: skip
    assert "ovs_port_group.py" not in code
    sources = attach().hook_files("port_group")
    module = (Path(__file__).parents[2] / "modules" / "port_group.py").read_text()
    assert sources["/var/lib/vnetctl/attach/port_group/port_group.py"] == module
    assert sources[HOOK].startswith("#!") and "vnet_vm_hook.main('port_group'" in sources[HOOK]


def test_in_place_is_no_change_and_each_file_missing_changed_or_left_over_is():
    assert plan(GROUP, facts(installed(), declared())) == ([], [])
    code = "/var/lib/vnetctl/attach/port_group/vnet_host.py"
    for files, field in (
        ({p: h for p, h in installed().items() if p != code}, "attach.files"),  # missing
        (dict(installed(), **{code: "0" * 64}), "attach.hook"),  # changed by hand
        (dict(installed(), **{HOOK: installed()[HOOK] + " not executable"}), "attach.hook"),
        (dict(installed(), **{"/var/lib/vnetctl/attach/port_group/x.py": "0"}), "attach.files"),
    ):  # fmt: skip
        changes, steps = plan(GROUP, facts(files, declared()))
        assert field in changes, files
        assert f"file write {HOOK}" in steps  # the whole hook again
    left = "/var/lib/vnetctl/attach/port_group/x.py"
    _, steps = plan(GROUP, facts(dict(installed(), **{left: "0"}), declared()))
    assert f"file remove {left}" in steps


def test_a_declaration_changed_by_hand_is_drift_by_field():
    hand = json.dumps(dict(json.loads(declared()[POLICY]), isolated=False))
    changes, steps = plan(GROUP, facts(installed(), {POLICY: hand}))
    assert changes == ["attach.policy.isolated"] and steps == [f"file write {POLICY}"]


def test_absent_removes_the_declaration_and_with_the_last_group_the_hook():
    other = "/etc/vnetctl/attach/port_group/br-vm/db.json"
    gone = dict(GROUP, state="absent")
    found = facts(installed(), dict(declared(), **{other: "{}"}))
    assert plan(gone, found)[1][-1:] == [f"file remove {POLICY}"]
    assert not any(HOOK in s for s in plan(gone, found)[1])
    _, steps = plan(gone, facts(installed(), declared()))
    removed = {s.split()[2] for s in steps if s.startswith("file remove")}
    assert removed == set(installed()) | {POLICY}


def test_names_with_dots_get_files_of_their_own():
    """`br.a` + `b` and `br` + `a.b` were one file, BRIDGE.GROUP.json, before."""
    one = attach().policy_path("port_group", {"bridge": "br.a", "name": "b"})
    two = attach().policy_path("port_group", {"bridge": "br", "name": "a.b"})
    assert one != two and one.endswith("/br.a/b.json") and two.endswith("/br/a.b.json")


def test_a_declaration_in_the_old_layout_is_moved_by_its_groups_run():
    old = "/etc/vnetctl/attach/port_group/br-vm.web.json"
    stranger = "/etc/vnetctl/attach/port_group/br-vm.db.json"  # another group's: kept
    text = declared()[POLICY]
    changes, steps = plan(GROUP, facts(installed(), {old: text, stranger: "{}"}))
    assert "attach.legacy" in changes and f"file remove {old}" in steps
    assert f"file write {POLICY}" in steps and not any(stranger in s for s in steps)
    changes, steps = plan(GROUP, facts(installed(), dict(declared(), **{old: text})))
    assert changes == ["attach.legacy"] and steps == [f"file remove {old}"]
    # the group's last declaration, old layout only: absent removes it and the hook
    _, steps = plan(dict(GROUP, state="absent"), facts(installed(), {old: text}))
    removed = {s.split()[2] for s in steps if s.startswith("file remove")}
    assert removed == set(installed()) | {old}


def test_a_rollback_to_no_hook_removes_what_the_run_wrote():
    found = facts(installed(), declared())
    before = LIB.plan(CATALOG.load("port_group"), GROUP, facts())["current"]
    changes, steps = plan(GROUP, found, target=before)
    assert "attach.hook" in changes and "attach.policy.name" in changes
    assert {s.split()[2] for s in steps if s.startswith("file remove")} == \
        set(installed()) | {POLICY}  # fmt: skip


def test_no_libvirt_no_hook_and_the_hooks_own_runs_leave_its_files_alone():
    data = json.loads((FACTS / "thiskernel_port_group.json").read_text())
    data["vm_attach"] = {"libvirt": False, "files": {}, "policies": {}, "ports": {}}
    assert plan(GROUP, LIB.Facts(data)) == ([], [])
    scoped = CATALOG.load("port_group").scoped(GROUP, ["vnet0"], "52:54:00:aa:00:00")
    assert plan(scoped, facts()) == ([], [])


def test_a_tap_without_a_declared_guest_takes_the_mac_the_hook_recorded():
    """libvirt's tap carries fe:... ; the guest's MAC is in the hook's record."""
    group = {"name": "web", "bridge": "br-vm", "ports": ["vnet1"]}
    record = {"vnet1": json.dumps({"mac": "52:54:00:bb:00:01", "domain": "web1"})}
    planned = LIB.plan(CATALOG.load("port_group"), group,
                       facts(installed(), declared(group), record))  # fmt: skip
    assert planned["desired"]["ports"]["vnet1"]["macs"] == ["52:54:00:bb:00:01"]


XML = """<domain type='qemu'><name>web1</name><metadata>
  <vnetctl:vm xmlns:vnetctl="https://vnetctl.dev/xmlns/1"><vnetctl:tier>db</vnetctl:tier>
  </vnetctl:vm></metadata><devices>
  <interface type='network'><mac address='52:54:00:AA:00:01'/>
    <source network='prod' portgroup='db' bridge='br-vm'/><target dev='vnet3'/></interface>
  <interface type='bridge'><mac address='52:54:00:aa:00:02'/><source bridge='br-vm'/>
    <target dev='web1-b'/></interface>
  <interface type='bridge'><mac address='52:54:00:aa:00:03'/><source bridge='br-vm'/></interface>
  <interface type='bridge'><source bridge='br-vm'/><target dev='bad name'/></interface>
</devices></domain>"""


def hook():
    return CATALOG.load("port_group").attach.sys.modules["vnet_vm_hook"]


def test_the_hook_reads_each_nic_with_a_tap_from_the_domain_xml():
    assert hook().nics(XML) == [
        {"port": "vnet3", "mac": "52:54:00:aa:00:01", "bridge": "br-vm", "network": "prod",
         "portgroup": "db", "metadata": {"tier": "db"}},
        {"port": "web1-b", "mac": "52:54:00:aa:00:02", "bridge": "br-vm", "network": None,
         "portgroup": None, "metadata": {"tier": "db"}},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("nic", "expected"),
    [
        ({"port": "vnet3", "portgroup": "db"}, ["db"]),  # libvirt's port group names it
        ({"port": "vnet3", "portgroup": None}, ["web"]),  # else the patterns
        ({"port": "vnet3", "portgroup": "nosuch"}, ["web"]),
        ({"port": "tap0", "portgroup": None}, []),
    ],
)
def test_a_nics_group_is_the_libvirt_port_group_of_that_name_else_the_patterns(nic, expected):
    declared_groups = {
        "a": {"name": "web", "bridge": "br-vm", "ports": ["vnet*"]},
        "b": {"name": "db", "bridge": "br-vm", "ports": ["db*"]},
        "c": {"name": "db", "bridge": "br-other", "ports": ["vnet*"]},
    }
    module = CATALOG.load("port_group")
    found = hook().groups_of(module, declared_groups, nic, "br-vm", facts())
    assert [g["name"] for g in found] == expected


def test_an_ovs_snapshot_writes_the_settings_back_as_the_host_has_them():
    """vnet1 marked as web's: its rules (forged transmits rejected) and its inbound chain
    (MAC changes rejected) are declared, and the declaration plans nothing."""
    data = json.loads((FACTS / "ovs_port_group_secured.json").read_text())
    data["ovs_config"]["interfaces"]["vnet1"]["external_ids"]["vnetctl-port-group"] = "web"
    module = CATALOG.load("ovs_port_group")
    (web,) = CATALOG.snapshot("ovs_port_group", data)
    assert (web["forged_transmits"], web["mac_changes"], web["promiscuous"]) == (
        "reject", "reject", "reject")  # fmt: skip
    web["addresses"] = [{"port": "vnet1", "mac": "52:54:00:00:00:01"}]  # not in OVSDB
    planned = LIB.plan(module, dict(web, ports=["vnet*"]), LIB.Facts(data))
    assert planned["changes"] == []


def test_on_a_full_kernel_the_hook_gives_the_new_tap_its_vlans_only():
    """The hook's run on one port of a VLAN-filtering bridge: that port's membership,
    by the module's own planning (this lab's kernel has no VLAN filtering to try it)."""
    data = json.loads((FACTS / "fullkernel_bridge_vlans.json").read_text())
    group = {"name": "web", "bridge": "br-vm", "ports": ["vnet*", "eth9"], "vlan": 200,
             "tagged": "300-301", "port_security": False}  # fmt: skip
    scoped = CATALOG.load("port_group").scoped(group, ["vnet0"], "52:54:00:aa:00:00")
    _, steps = plan(scoped, LIB.Facts(data))
    assert steps == ["bridge vlan add dev vnet0 vid 200 pvid untagged",
                     "bridge vlan add dev vnet0 vid 300-301",
                     "bridge vlan del dev vnet0 vid 100"]  # fmt: skip


def test_the_hook_reads_declarations_in_both_layouts(tmp_path, monkeypatch):
    """A host upgraded but not yet run keeps its groups' attach-time policy."""
    monkeypatch.setattr(hook().vnet_vm_attach, "POLICIES", str(tmp_path / "%s"))
    (tmp_path / "port_group" / "br.a").mkdir(parents=True)
    (tmp_path / "port_group" / "br.a" / "b.json").write_text('{"bridge": "br.a", "name": "b"}')
    (tmp_path / "port_group" / "br.a.json").write_text('{"bridge": "br", "name": "a"}')
    (tmp_path / "port_group" / "br.a" / "deep").mkdir()
    (tmp_path / "port_group" / "br.a" / "deep" / "x.json").write_text("{broken")
    found = hook().policies("port_group")
    assert found == {"br.a/b.json": {"bridge": "br.a", "name": "b"},
                     "br.a.json": {"bridge": "br", "name": "a"}}  # fmt: skip
