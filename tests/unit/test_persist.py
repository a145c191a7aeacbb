"""Boot persistence (vnet_persist): what each module renders, exactly, for recorded facts
(fixtures/persist/*.yml); the one writer (atomic, only what changed, stale files gone,
check mode); the oneshot unit as systemd-analyze verifies it; every networkd key rendered
one networkd knows, where networkd is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from full_disk import FullDisk

from vnetctl.catalog import Catalog

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = Catalog()
host = CATALOG.host_lib()
persist = sys.modules["vnet_persist"]  # installed with the host library
NETWORKD = Path("/lib/systemd/systemd-networkd")
BRIDGE = {"name": "br-vm", "ports": ["eth1"], "mtu": 9000, "stp": True, "forward_delay": 4}


def _cases():
    for path in sorted((FIXTURES / "persist").glob("*.yml")):
        for case in yaml.safe_load(path.read_text()):
            yield pytest.param(case, id=f"{path.stem}: {case['name']}")


def render(module_name, facts_file, params, root="/nonexistent"):
    module = CATALOG.load(module_name)
    facts = host.Facts(json.loads((FIXTURES / "facts" / facts_file).read_text()))
    planned = host.plan(module, params, facts)
    units = persist.Units(host.resource_id(module, planned["params"]), root)
    module.persist(planned["params"], planned["desired"], facts, units)
    return units


@pytest.mark.parametrize("case", list(_cases()))
def test_each_module_renders_exactly_its_boot_configuration(case):
    units = render(case["module"], case["facts"], case["params"])
    unit = {"THE ONESHOT UNIT": persist.UNIT}
    assert units.files == {path: unit.get(text, text) for path, text in case["files"].items()}


@pytest.mark.parametrize(
    ("module", "before", "after", "params"),
    [("linux_bridge", "plain_host.json", "bridge_9000.json", BRIDGE),
     ("vlan", "fullkernel_plain.json", "fullkernel_vlans.json", {"name": "eth1.100"})],
)  # fmt: skip
def test_what_a_task_renders_is_the_same_before_and_after_it_made_the_device(
    module, before, after, params
):
    """Else a re-apply would write again what the first run wrote."""
    assert render(module, before, params).files == render(module, after, params).files


def boot_persistence_table() -> dict[str, str]:
    """README's "Boot persistence" table: module -> what it writes."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("\n## Boot persistence\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| (.*) \|$", section, re.MULTILINE))


def test_every_module_that_changes_state_persists_or_the_readme_says_why_not():
    """Each resource module has its row in README's table; those whose row says
    "nothing" (OVS keeps its own database; port groups apply to VM ports libvirt makes
    as each guest starts) have no persist(), every other one has."""
    table = boot_persistence_table()
    resources = {n for n in CATALOG if not hasattr(CATALOG.load(n), "run")}
    assert set(table) == resources
    persisting = {n for n in resources if hasattr(CATALOG.load(n), "persist")}
    assert {n for n, written in table.items() if not written.startswith("nothing")} == persisting


def _files_in(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_the_writer_writes_what_changed_only_and_removes_what_is_no_longer_rendered(tmp_path):
    units = render("linux_bridge", "bridge_9000.json", BRIDGE, str(tmp_path))
    changes = persist.settle(units, check=False)
    assert sorted(c["path"] for c in changes) == sorted(units.files)
    assert all(c["before"] is None for c in changes)
    assert _files_in(tmp_path) == units.files
    stamps = {p: os.stat(tmp_path / p).st_mtime_ns for p in units.files}
    assert persist.settle(render("linux_bridge", "bridge_9000.json", BRIDGE, str(tmp_path)),
                          check=False) == []  # fmt: skip
    assert {p: os.stat(tmp_path / p).st_mtime_ns for p in units.files} == stamps
    assert not list(tmp_path.rglob("*.tmp"))

    moved = render("linux_bridge", "bridge_9000.json", dict(BRIDGE, ports=["eth2"]), str(tmp_path))
    changes = persist.settle(moved, check=False)
    gone = [c["path"] for c in changes if c["after"] is None]
    assert gone == [
        "etc/systemd/network/10-vnetctl-eth1.network.d/10-vnetctl-bridge-br-vm.conf",
        "etc/systemd/network/10-vnetctl-eth1.network",
    ]  # its base: said too
    assert _files_in(tmp_path) == moved.files  # eth1's base and its directory went too
    assert not (tmp_path / "etc/systemd/network/10-vnetctl-eth1.network.d").exists()

    absent = render("linux_bridge", "bridge_9000.json", {"name": "br-vm", "state": "absent"},
                    str(tmp_path))  # fmt: skip
    assert absent.files == {}
    persist.settle(absent, check=False)
    assert _files_in(tmp_path) == {}


def test_a_sysctl_file_is_read_back_changed_in_place_and_left_to_its_owner(tmp_path):
    """/etc/sysctl.d/99-vnetctl-*: found again by the writer (a re-apply writes nothing),
    changed whole; a file of someone else's there is never touched."""
    sysctl_d = tmp_path / "etc/sysctl.d"
    sysctl_d.mkdir(parents=True)
    (sysctl_d / "99-sysctl.conf").write_text("net.ipv4.ip_forward = 0\n")
    on = render("ip_forward", "sysctl_ip_forward_off.json", {"enabled": True}, str(tmp_path))
    assert [c["before"] for c in persist.settle(on, check=False)] == [None]
    again = render("ip_forward", "sysctl_ip_forward_on.json", {"enabled": True}, str(tmp_path))
    assert persist.settle(again, check=False) == []
    off = render("ip_forward", "sysctl_ip_forward_on.json", {"enabled": False}, str(tmp_path))
    (change,) = persist.settle(off, check=False)
    assert change["before"].endswith("= 1\n") and change["after"].endswith("= 0\n")
    assert _files_in(tmp_path) == dict(off.files, **{"etc/sysctl.d/99-sysctl.conf":
                                                     "net.ipv4.ip_forward = 0\n"})  # fmt: skip


def test_check_mode_reports_the_changes_and_writes_nothing(tmp_path):
    units = render("linux_bridge", "bridge_9000.json", BRIDGE, str(tmp_path))
    persist.settle(units, check=False)
    netdev = tmp_path / "etc/systemd/network/10-vnetctl-br-vm.netdev"
    netdev.write_text(netdev.read_text().replace("STP=yes", "STP=no"))
    port = "etc/systemd/network/10-vnetctl-eth1.network.d/10-vnetctl-bridge-br-vm.conf"
    (tmp_path / port).unlink()
    before = _files_in(tmp_path)
    changes = persist.settle(units, check=True)
    assert [(c["path"], c["before"] is None, c["after"] is None) for c in changes] == [
        ("etc/systemd/network/10-vnetctl-br-vm.netdev", False, False),
        (port, True, False),
    ]
    assert _files_in(tmp_path) == before


def test_other_files_are_never_touched_and_another_owner_keeps_a_shared_bridge(tmp_path):
    network = tmp_path / "etc/systemd/network"
    network.mkdir(parents=True)
    (network / "50-mine.network").write_text("[Match]\nName=eth9\n")
    (network / "10-vnetctl-notes.txt").write_text("no owner line: not vnetctl's\n")
    bridge = render("linux_bridge", "plain_host.json", {"name": "br-vx100", "stp": True},
                    str(tmp_path))  # fmt: skip
    persist.settle(bridge, check=False)
    mesh_params = {"name": "ov", "local": "10.98.0.1", "peers": ["10.98.0.2"],
                   "segments": [{"vni": 100, "bridge": "br-vx100"}]}  # fmt: skip
    mesh = render("vxlan_mesh", "mesh_vni100.json", mesh_params, str(tmp_path))
    changes = persist.settle(mesh, check=False)
    assert "etc/systemd/network/10-vnetctl-br-vx100.netdev" not in [c["path"] for c in changes]
    assert "STP=yes" in (network / "10-vnetctl-br-vx100.netdev").read_text()
    assert persist.settle(mesh, check=True) == []
    assert (network / "50-mine.network").read_text() == "[Match]\nName=eth9\n"
    assert (network / "10-vnetctl-notes.txt").exists()


def _networkd_state(root: Path, dev: str, index: int, network_file: str) -> None:
    (root / "sys/class/net" / dev).mkdir(parents=True)
    (root / "sys/class/net" / dev / "ifindex").write_text(f"{index}\n")
    (root / "run/systemd/netif/links").mkdir(parents=True, exist_ok=True)
    (root / "run/systemd/netif/links" / str(index)).write_text(
        f"ADMIN_STATE=configured\nNETWORK_FILE={network_file}\n"
    )


def test_a_device_networkd_configures_from_its_own_file_gets_a_drop_in_of_it(tmp_path):
    """The Vagrant tier's underlay: Vagrant's 50-vagrant-eth0.network holds its address;
    the mesh adds VXLAN= beside it, never a file that would replace it."""
    network = tmp_path / "etc/systemd/network"
    network.mkdir(parents=True)
    (network / "50-vagrant-eth0.network").write_text("[Match]\nName=eth0\n[Network]\nAddress=x\n")
    _networkd_state(tmp_path, "eth0", 2, "/etc/systemd/network/50-vagrant-eth0.network")
    params = {"name": "ov", "local": "10.98.0.1", "peers": ["10.98.0.2"],
              "segments": [{"vni": 100, "bridge": "br-vx100"}]}  # fmt: skip
    units = render("vxlan_mesh", "mesh_vni100.json", params, str(tmp_path))
    drop_in = "etc/systemd/network/50-vagrant-eth0.network.d/10-vnetctl-mesh-ov.conf"
    assert units.files[drop_in] == "# vnetctl owner: mesh ov\n\n[Network]\nVXLAN=vxlan100\n"
    assert "etc/systemd/network/10-vnetctl-eth0.network" not in units.files
    persist.settle(units, check=False)
    assert (tmp_path / drop_in).is_file()
    persist.settle(render("vxlan_mesh", "mesh_vni100.json", dict(params, state="absent"),
                          str(tmp_path)), check=False)  # fmt: skip
    assert not (tmp_path / drop_in).exists()
    assert (network / "50-vagrant-eth0.network").is_file()


def test_a_device_matched_by_a_wider_file_of_someone_else_is_refused(tmp_path):
    network = tmp_path / "etc/systemd/network"
    network.mkdir(parents=True)
    (network / "80-dhcp.network").write_text("[Match]\nName=eth*\n[Network]\nDHCP=yes\n")
    _networkd_state(tmp_path, "eth1", 3, "/etc/systemd/network/80-dhcp.network")
    with pytest.raises(persist.PersistError, match="matches more than eth1"):
        render("link", "plain_host.json", {"name": "eth1", "mtu": 9000}, str(tmp_path))


def test_the_oneshot_unit_exists_while_a_device_needs_it(tmp_path):
    shaping = {"name": "eth2", "egress_limit": 50, "ingress_limit": 30}
    persist.settle(render("traffic_shaping", "shaping_vm_port.json", shaping, str(tmp_path)),
                   check=False)  # fmt: skip
    unit = tmp_path / persist.UNIT_PATH
    wants = tmp_path / persist.WANTS_PATH
    assert unit.read_text() == persist.UNIT
    assert os.readlink(wants) == "/etc/systemd/system/vnetctl-reapply.service"
    persist.settle(render("traffic_shaping", "shaping_vm_port.json", dict(shaping, state="absent"),
                          str(tmp_path)), check=False)  # fmt: skip
    assert not unit.exists() and not os.path.lexists(wants)
    assert _files_in(tmp_path) == {}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_oneshot_unit(tmp_path):
    path = tmp_path / persist.UNIT_NAME
    path.write_text(persist.UNIT)
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_the_oneshot_runs_every_file_once_its_devices_exist(tmp_path):
    """The unit's shell script as systemd hands it to sh ($$ is $), on files of our own,
    with `tc` a recorder: each file's lines once, after its devices appear."""
    command = re.search(r"ExecStart=/bin/sh -c '(.*?)'\n", persist.UNIT, re.S).group(1)
    script = command.replace("\\\n", "\n").replace("$$", "$")
    boot = tmp_path / "boot.d"
    boot.mkdir()
    (boot / "10-vnetctl-shaping-lo.tc").write_text("# vnetctl owner: x\n# device: lo\nqdisc a\n")
    (tmp_path / "bin").mkdir()
    tc = tmp_path / "bin" / "tc"
    tc.write_text(f'#!/bin/sh\necho "$@" >>{tmp_path}/ran\n')
    tc.chmod(0o755)
    script = script.replace("/etc/vnetctl/boot.d", str(boot))
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ran").read_text() == f"-batch {boot}/10-vnetctl-shaping-lo.tc\n"


def _keys(text: str) -> set[str]:
    """Section.Key of every setting in a unit file."""
    found, section = set(), ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#"):
            found.add(f"{section}.{line.partition('=')[0]}")
    return found


@pytest.mark.skipif(not NETWORKD.is_file(), reason=f"no {NETWORKD} here")
def test_every_rendered_networkd_setting_is_one_networkd_knows():
    """networkd's parser tables (gperf) are strings in its binary: 'Bridge.STP'. A .link
    file is udev's (not installed here): its two keys are checked by name."""
    known = set(re.findall(rb"[A-Z][A-Za-z0-9]+\.[A-Z][A-Za-z0-9]+", NETWORKD.read_bytes()))
    used = set()
    for case in _cases():
        for path, text in case.values[0]["files"].items():
            if path.endswith(".link"):
                assert _keys(text) == {"Match.OriginalName", "Link.Alias"}
            elif "/systemd/network/" in path:
                used |= _keys(text)
    assert used and {k for k in used if k.encode() not in known} == set()


def test_auto_is_networkd_where_the_host_booted_systemd_with_networkd_enabled(tmp_path):
    root = str(tmp_path)
    assert persist.configure({"root": root}) == (
        {"mode": "none", "root": root},
        "the host did not boot systemd",
    )
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    assert persist.configure({"root": root})[1] == "systemd-networkd is not enabled here"
    (tmp_path / "run/systemd/netif").mkdir(parents=True)
    (tmp_path / "run/systemd/netif/state").write_text("OPER_STATE=routable\n")
    assert persist.configure({"root": root}) == (
        {"mode": "networkd", "root": root},
        "systemd-networkd runs here",
    )
    (tmp_path / "run/systemd/netif/state").unlink()
    wants = tmp_path / persist.NETWORKD_ENABLED
    wants.parent.mkdir(parents=True)
    wants.symlink_to("/lib/systemd/system/systemd-networkd.service")
    assert persist.configure({"root": root}) == (
        {"mode": "networkd", "root": root},
        "systemd-networkd is enabled here",
    )
    assert persist.configure({"root": root, "mode": "none"}) == (
        {"mode": "none", "root": root},
        "declared",
    )


def test_a_commit_confirmed_rollback_restores_the_files_a_task_wrote(tmp_path):
    """The watchdog's journal holds each file as it was, recorded before the first write:
    a rollback rewrites or removes it, so the boot configuration goes back with the
    running state, and the files are re-read to say so."""
    from vnetctl.hostside import safe_apply  # noqa: PLC0415

    units = render("linux_bridge", "bridge_9000.json", BRIDGE, str(tmp_path))
    persist.settle(units, check=False)
    before = _files_in(tmp_path)
    moved = render("linux_bridge", "bridge_9000.json", dict(BRIDGE, ports=["eth2"], mtu=1500),
                   str(tmp_path))  # fmt: skip
    confirm = safe_apply.Confirm({}, host, {}, None, None)
    seen = []

    def journal(changes):
        seen.append(_files_in(tmp_path))  # called before anything is written
        confirm.files_journal(3, str(tmp_path))(changes)

    persist.settle(moved, check=False, journal=journal)
    assert seen == [before] and _files_in(tmp_path) != before
    result = safe_apply.roll_back(confirm.journal.entries, host, {})
    assert (result["problems"], result["left"], result["after_task"]) == ([], [], 3)
    assert result["rolled_back"] is True
    assert _files_in(tmp_path) == before


@pytest.mark.parametrize("share", [0, 0.3, 0.6, 0.95])
def test_files_a_full_disk_cannot_hold_are_all_left_as_they_were(tmp_path, monkeypatch, share):
    """A task's files change together or not at all: no half-written file, no temporary
    one, no new directory, none of the old files removed."""
    persist.settle(render("linux_bridge", "bridge_9000.json", BRIDGE, str(tmp_path)),
                   check=False)  # fmt: skip
    before = _files_in(tmp_path)
    dirs = sorted(p for p in tmp_path.rglob("*") if p.is_dir())
    moved = render("linux_bridge", "bridge_9000.json", dict(BRIDGE, ports=["eth2"], mtu=1500),
                   str(tmp_path))  # fmt: skip
    written = [c["after"] for c in persist.settle(moved, check=True) if c["after"]]
    assert len(written) > 1  # the disk fills on the way: after none, one, or most of them
    monkeypatch.setattr(
        sys.modules["vnet_files"], "os", FullDisk(int(share * len("".join(written))))
    )
    with pytest.raises(OSError, match="No space left") as failed:
        persist.settle(moved, check=False)
    assert failed.value.filename.startswith(str(tmp_path))  # the error names its file
    assert _files_in(tmp_path) == before
    assert sorted(p for p in tmp_path.rglob("*") if p.is_dir()) == dirs


def test_a_journal_that_cannot_record_leaves_the_files_unwritten(tmp_path):
    units = render("linux_bridge", "bridge_9000.json", BRIDGE, str(tmp_path))

    def full(changes):
        raise OSError(28, "No space left on device", "/run/lock/journal")

    with pytest.raises(OSError):
        persist.settle(units, check=False, journal=full)
    assert _files_in(tmp_path) == {} and list(tmp_path.iterdir()) == []
