"""Apply, reboot a guest, find everything back: boot persistence (README, "Boot
persistence"). The guests run systemd-networkd, so vnetctl writes each task's units
there (the default, `persist` unset); Open vSwitch keeps its own configuration in its
database. After the reboot, `vnetctl drift` reports nothing on the rebooted host, for
each playbook; a unit file removed by hand is then drift `not persisted`, and a run
writes it again.

What drift reports after the reboot is written to the tier's report (reboot.txt) either
way: on a failure it says what the boot did not bring back."""

from __future__ import annotations

import pytest

from tests.vagrant.guests import ROOT, Guest, report, vnetctl, wait_until

pytestmark = pytest.mark.vagrant

SITE = str(ROOT / "playbooks" / "site.yml")
LINUX_MESH = str(ROOT / "tests" / "vagrant" / "playbooks" / "vxlan-underlay.yml")
OVS_MESH = str(ROOT / "tests" / "vagrant" / "playbooks" / "vxlan-ovs-underlay.yml")
# 8000, not 9000: the guests' NICs boot at 9000 (their libvirt network's MTU), and a
# value the boot gives anyway would survive by coincidence
PLAYBOOKS = {
    "site": [SITE, "-e", "vm_uplink=eth2", "-e", "storage_nic=eth3", "-e", "vm_mtu=8000"],
    "vxlan-linux": [LINUX_MESH],
    "vxlan-ovs": [OVS_MESH],
}
NETWORK = "/etc/systemd/network"
# what the boot configuration of each playbook's resources is on a guest (the underlay
# eth1 is Vagrant's 50-vagrant-eth1.network: the mesh's VXLAN= is a drop-in of it)
UNITS = {
    "site": [
        "10-vnetctl-br-vm.netdev",
        "10-vnetctl-br-vm.network.d/10-vnetctl-bridge-br-vm.conf",
        "10-vnetctl-eth2.network.d/10-vnetctl-bridge-br-vm.conf",
        "10-vnetctl-eth3.network.d/10-vnetctl-link-eth3.conf",
    ],
    "vxlan-linux": [
        "10-vnetctl-vxlan100.netdev", "10-vnetctl-vxlan100.link",
        "10-vnetctl-vxlan200.netdev", "10-vnetctl-vxlan200.link",
        "10-vnetctl-br-vx100.netdev", "10-vnetctl-br-vx200.netdev",
        "50-vagrant-eth1.network.d/10-vnetctl-mesh-tenants.conf",
    ],
}  # fmt: skip
LOST_BY_HAND = f"{NETWORK}/10-vnetctl-eth3.network.d/10-vnetctl-link-eth3.conf"


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


BUSY = ("pending", "initialized", "configuring")  # networkd's setup states still under way


def networkd_settled(guest: Guest) -> str:
    """After the boot: systemd done starting units, and networkd no longer configuring
    any link (SSH answers before networkd has made every device). `networkctl list`."""
    guest.run("systemctl is-system-running --wait", timeout=300)  # "degraded" is fine

    seen = [""]

    def listing() -> str | None:
        seen[0] = guest.sh("networkctl list --no-legend --no-pager")
        return None if set(seen[0].split()) & set(BUSY) else seen[0]

    try:
        return wait_until(f"{guest.name}: networkd configured every link", listing, timeout=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; networkctl list:\n{seen[0]}") from None


def apply_all(capsys, inventory: str) -> list[dict]:
    results = []
    for argv in PLAYBOOKS.values():
        code, doc = vnetctl(capsys, "run", argv[0], "-i", inventory, *argv[1:])
        assert code == 0, doc
        results += doc["results"]
    return results


def test_a_reboot_brings_back_everything_vnetctl_applied(clean, inventory, capsys, tmp_path):
    history = str(tmp_path / "history.sqlite")
    results = apply_all(capsys, inventory)
    victim = clean[-1]
    modes = {r["data"]["persist"]["mode"] for r in results
             if r["host"] == victim.name and "persist" in r["data"]}  # fmt: skip
    assert modes == {"networkd"}, "the guests run systemd-networkd: persist is networkd there"
    for name, files in UNITS.items():
        found = victim.sh(f"cd {NETWORK} && ls -1 {' '.join(files)}").split()
        assert sorted(found) == sorted(files), name
    assert drift_items(capsys, inventory, history, victim.name) == {n: set() for n in PLAYBOOKS}

    seconds = victim.reboot()
    links = networkd_settled(victim)
    after = drift_items(capsys, inventory, history, victim.name)
    lines = [f"reboot of {victim.name}: back over SSH after {seconds:.0f} s; drift then reports:"]
    for name, items in after.items():
        lines.append(f"  {name}: " + ("nothing lost" if not items else f"{len(items)} item(s)"))
        lines += [f"    {r} {k} {f or ''}: declared {d}, actual {a}" for r, k, f, d, a in sorted(
            items, key=str)]  # fmt: skip
    if any(after.values()):  # what networkd made of the units, to read beside the drift
        journal = "journalctl -b -u systemd-networkd -u systemd-udevd --no-pager | tail -40"
        lines += ["networkctl list:", links, victim.sh(journal)]
    report("reboot.txt", "\n".join(lines))
    assert after == {n: set() for n in PLAYBOOKS}
    # and, said directly, the devices are there as declared
    links = victim.links()
    assert links["br-vm"]["mtu"] == 8000 and links["eth2"].get("master") == "br-vm"
    assert links["eth3"]["mtu"] == 8000 and "UP" in links["eth3"]["flags"]
    for vni, bridge in (("100", "br-vx100"), ("200", "br-vx200")):
        assert links[f"vxlan{vni}"].get("master") == bridge
        assert links[f"vxlan{vni}"].get("ifalias") == "vnetctl-mesh:tenants"
    code, doc = vnetctl(capsys, "mesh", "check", LINUX_MESH, "-i", inventory)
    assert code == 0, doc

    # a unit file removed by hand: the running state is right, the boot configuration not
    victim.sh(f"rm {LOST_BY_HAND}")
    lost = drift_items(capsys, inventory, history, victim.name)
    assert lost == {
        "site": {("link eth3", "not persisted", LOST_BY_HAND,
                  repr("# vnetctl owner: link eth3\n\n[Link]\nMTUBytes=8000\n"
                       "ActivationPolicy=up\n"), "None")},
        "vxlan-linux": set(),
        "vxlan-ovs": set(),
    }  # fmt: skip
    code, doc = vnetctl(capsys, "run", *PLAYBOOKS["site"][:1], "-i", inventory,
                        *PLAYBOOKS["site"][1:])  # fmt: skip
    assert code == 0, doc
    assert victim.sh(f"cat {LOST_BY_HAND}").startswith("# vnetctl owner: link eth3")
    assert drift_items(capsys, inventory, history, victim.name) == {n: set() for n in PLAYBOOKS}
