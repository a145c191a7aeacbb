"""Apply, reboot a guest, see what survived: what vnetctl applies today lives in the
running kernel only (issue 17 adds boot persistence), so a reboot loses it, except Open
vSwitch's configuration, which OVS keeps in its own database.

The test asserts exactly what is lost today (LOST_TODAY, as `vnetctl drift` reports it
for the rebooted host) and writes it to the tier's report. When boot persistence lands,
LOST_TODAY becomes the empty set and this test is the proof. Then a run restores all of
it and drift is clean again."""

from __future__ import annotations

import pytest

from tests.vagrant.guests import ROOT, report, vnetctl

pytestmark = pytest.mark.vagrant

SITE = str(ROOT / "playbooks" / "site.yml")
LINUX_MESH = str(ROOT / "tests" / "vagrant" / "playbooks" / "vxlan-underlay.yml")
OVS_MESH = str(ROOT / "playbooks" / "vxlan-mesh-ovs.yml")
# 8000, not 9000: the guests' NICs boot at 9000 (their libvirt network's MTU), and a
# value the boot gives anyway would survive by coincidence
PLAYBOOKS = {
    "site": [SITE, "-e", "vm_uplink=eth2", "-e", "storage_nic=eth3", "-e", "vm_mtu=8000"],
    "vxlan-linux": [LINUX_MESH],
    "vxlan-ovs": [OVS_MESH, "-e", "ovs_datapath=system", "-e", "vtep_interface=eth1"],
}

# (playbook, resource, kind, field) that drift reports on the rebooted host, today.
LOST_TODAY = {
    ("site", "bridge br-vm", "missing", None),
    ("site", "link eth3", "different", "mtu"),  # back to the NIC's boot value
    ("site", "link eth3", "different", "admin_state"),  # down: nothing brings it up
    ("vxlan-linux", "mesh tenants", "missing", None),
    ("vxlan-linux", "mesh tenants", "missing", "segments.100"),
    ("vxlan-linux", "mesh tenants", "missing", "segments.200"),
    # nothing of "vxlan-ovs": OVS rebuilds its bridges and tunnel ports from its database
}


def drift_items(capsys, inventory: str, history: str, host: str) -> dict[str, set]:
    """{playbook: {(resource, kind, field, declared, actual)}} drift finds on `host`."""
    found = {}
    for name, argv in PLAYBOOKS.items():
        code, doc = vnetctl(capsys, "drift", *argv[:1], "-i", inventory, *argv[1:],
                            "--history", history)  # fmt: skip
        assert code in (0, 2), doc
        found[name] = {
            (i["resource"], i["kind"], i["field"], repr(i["declared"]), repr(i["actual"]))
            for h in doc["hosts"] if h["host"] == host
            for i in h["items"]
        }  # fmt: skip
    return found


def test_reboot_loses_what_is_not_persisted_and_a_run_restores_it(
    clean, inventory, capsys, tmp_path
):
    history = str(tmp_path / "history.sqlite")
    for argv in PLAYBOOKS.values():
        code, doc = vnetctl(capsys, "run", argv[0], "-i", inventory, *argv[1:])
        assert code == 0, doc
    victim = clean[-1]
    assert drift_items(capsys, inventory, history, victim.name) == {n: set() for n in PLAYBOOKS}

    seconds = victim.reboot()
    after = drift_items(capsys, inventory, history, victim.name)
    lost = {(name, *item[:3]) for name, items in after.items() for item in items}
    lines = [f"reboot of {victim.name}: back over SSH after {seconds:.0f} s; drift then reports:"]
    for name, items in after.items():
        lines.append(f"  {name}: " + ("nothing lost" if not items else f"{len(items)} item(s)"))
        lines += [f"    {r} {k} {f or ''}: declared {d}, actual {a}" for r, k, f, d, a in sorted(
            items, key=str)]  # fmt: skip
    report("reboot.txt", "\n".join(lines))
    assert lost == LOST_TODAY

    for argv in PLAYBOOKS.values():
        code, doc = vnetctl(capsys, "run", argv[0], "-i", inventory, *argv[1:])
        assert code == 0, doc
    assert drift_items(capsys, inventory, history, victim.name) == {n: set() for n in PLAYBOOKS}
    code, doc = vnetctl(capsys, "mesh", "check", LINUX_MESH, "-i", inventory)
    assert code == 0, doc
