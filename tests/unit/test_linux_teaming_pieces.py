"""The pieces behind bond, vlan, bridge VLAN filtering and port groups that the plan
fixtures do not show one by one: what the kernel probe concludes from its evidence,
VLAN sets and `bridge vlan` steps, the kernel's default-PVID rule, the management
address moving to a bond as safe apply reads it, and snapshots of full-kernel hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog
from vnetctl.snapshot.playbook import host_tasks

CATALOG = Catalog()
host = CATALOG.host_lib()
kernel, vlans, safety = (
    __import__(name) for name in ("vnet_kernel", "vnet_vlans", "vnet_safety")
)  # installed by host_lib(), as on a host
FACTS = Path(__file__).parent / "fixtures" / "facts"


def recorded(name):
    data = json.loads((FACTS / name).read_text())
    data.setdefault("ovs", None)  # no Open vSwitch on these hosts
    return data


def facts_with(evidence, links=()):
    return host.Facts({"kernel": evidence, "links": list(links)})


@pytest.mark.parametrize(
    ("evidence", "feature", "expected"),
    [
        (["loaded /sys/class/net/bonding_masters"], "bonding", True),  # loaded or built in
        (["config", "CONFIG_BONDING=m", "loadable bonding"], "bonding", True),  # modprobe can
        (["config", "CONFIG_VLAN_8021Q=y"], "8021q", True),
        (["config", "CONFIG_BONDING=m"], "bonding", False),  # built as a module, not installed
        (["config"], "8021q", False),  # "is not set"
        ([], "bonding", False),  # not loaded, not loadable, no config
        (["config", "CONFIG_BRIDGE_VLAN_FILTERING=y"], "bridge_vlan_filtering", True),
        (["config"], "bridge_vlan_filtering", False),
        ([], "bridge_vlan_filtering", None),  # cannot tell: the kernel will say
    ],
)
def test_what_the_kernel_probe_concludes(evidence, feature, expected):
    assert kernel.has(feature, facts_with(evidence)) is expected


def test_an_existing_bridge_tells_whether_the_kernel_filters_vlans():
    full = recorded("fullkernel_bridge_vlans.json")
    assert kernel.has("bridge_vlan_filtering", host.Facts(full)) is True
    here = recorded("bridge_9000.json")  # recorded on the lab's kernel, no probe needed
    assert kernel.has("bridge_vlan_filtering", host.Facts(here)) is False


def test_require_refuses_only_what_is_known_missing():
    kernel.require("bridge_vlan_filtering", facts_with([]), "bridge br0")  # unknown: go on
    with pytest.raises(host.ModuleError, match=r"bond b0: .*`modprobe bonding`"):
        kernel.require("bonding", facts_with(["config"]), "bond b0")


def test_the_probe_reads_only_and_always_exits_zero():
    argv = kernel.SOURCE.argv
    assert argv[:2] == ["sh", "-c"] and argv[2].endswith("exit 0")
    for word in ("modprobe -n", "zcat /proc/config.gz", "/boot/config-"):
        assert word in argv[2]
    assert kernel.evidence("loaded /proc/net/vlan/config\n\nconfig\n") == [
        "loaded /proc/net/vlan/config",
        "config",
    ]


@pytest.mark.parametrize(
    ("declared", "ids"),
    [("1,100-102", {1, 100, 101, 102}), ([5, "7-8"], {5, 7, 8}), ("", set()), (None, set())],
)
def test_vlan_sets_from_what_is_declared(declared, ids):
    assert vlans.vids(declared) == ids


@pytest.mark.parametrize(
    ("declared", "problem"),
    [("0", "outside 1..4094"), ("10-x", "not a VLAN id"), ("9-3", "outside")],
)
def test_bad_vlan_sets_are_refused(declared, problem):
    with pytest.raises(host.ModuleError, match=problem):
        vlans.vids(declared)


def test_vlan_set_text_is_canonical():
    assert vlans.text({300, 1, 100, 101, 102, 4094}) == "1,100-102,300,4094"
    assert vlans.declared({"vlans": "10", "pvid": 20, "untagged": 30}, "x") == {
        "vlans": "10,20,30", "pvid": 20, "untagged": "30",
    }  # fmt: skip


def test_moving_the_pvid_only_re_adds_the_two_vlans_involved():
    before = vlans.membership({1, 10}, 1, {1})
    after = vlans.membership({1, 10}, 10, {10})
    steps = [line for _, line in vlans.steps("eth1", before, after)]
    assert steps == ["vlan add dev eth1 vid 10 pvid untagged", "vlan add dev eth1 vid 1"]


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (vlans.membership({1, 5}, 1, {1}), vlans.membership({10, 5}, 10, {10})),  # on the default
        (vlans.membership({1, 10}, 1, {1}), vlans.membership({1, 10}, 1, {1})),  # has 10 already
        (vlans.membership({1, 5}, 5, {1, 5}), vlans.membership({1, 5}, 5, {1, 5})),  # own PVID
        (vlans.membership({1}, 1, set()), vlans.membership({1}, 1, set())),  # 1 is tagged
    ],
)
def test_a_new_default_pvid_moves_only_what_is_still_on_the_old_one(member, expected):
    assert vlans.after_default_pvid(member, 1, 10) == expected


def plan(module, facts_file, params):
    return host.plan(CATALOG.load(module), params, host.Facts(recorded(facts_file)))


def test_enslaving_the_management_nic_gives_the_bond_its_address_so_it_is_no_cut():
    facts = host.Facts(recorded("fullkernel_plain.json"))
    steps = plan("bond", "fullkernel_plain.json", {"name": "bond0", "members": ["eth0"]})["steps"]
    mgmt = safety.management_path(facts, "10.98.0.11")
    assert mgmt["interface"] == "eth0"
    effects = {f["step"]: f for f in safety.classify(steps, mgmt, facts)}
    moved = effects["ip link set dev eth0 master bond0"]
    assert moved["effect"] == "moved into bond0" and not moved["cuts"]
    assert "ip addr del 10.98.0.11/24 dev eth0" not in effects  # re-added on the bond
    lines = [" ".join(s) for s in steps]
    assert lines.index("ip addr add 10.98.0.11/24 dev bond0") < lines.index(
        "ip link set dev eth0 master bond0"
    )


def test_a_joining_member_without_addresses_moves_nothing():
    planned = plan("bond", "fullkernel_plain.json", {"name": "bond0", "members": ["eth2"]})
    assert not [s for s in planned["steps"] if s[1].startswith(("addr", "route"))]
    assert planned["desired"]["addresses"] == {"eth2": []}


@pytest.mark.parametrize(
    ("facts_file", "module", "params"),
    [
        ("fullkernel_bond_lacp.json", "bond", {"name": "bond0", "mode": "802.3ad",
         "members": ["eth1", "eth2"], "lacp_rate": "slow", "xmit_hash_policy": "layer3+4"}),
        ("fullkernel_vlans.json", "vlan", {"name": "eth1.100", "parent": "eth1", "id": 100,
         "mtu": 9000}),
        ("fullkernel_bridge_vlans.json", "linux_bridge", {"name": "br-vm", "vlan_filtering": True,
         "port_vlans": [{"vlans": "1,100,200-210", "pvid": 1, "untagged": "1", "port": "eth1"},
                        {"vlans": "100", "pvid": 100, "untagged": "100", "port": "vnet0"}]}),
    ],
)  # fmt: skip
def test_snapshots_of_a_full_kernel_host_declare_bonds_vlans_and_bridge_vlans(
    facts_file, module, params
):
    tasks = [p for m, p in host_tasks(CATALOG, recorded(facts_file)) if m == module]
    assert any(all(task.get(k) == v for k, v in params.items()) for task in tasks), tasks


def test_a_snapshot_declares_port_groups_by_policy_and_security_as_the_table_holds_it():
    groups = [p for m, p in host_tasks(CATALOG, recorded("thiskernel_port_group.json"))
              if m == "port_group"]  # fmt: skip
    vnet0 = next(g for g in groups if g["ports"] == ["vnet0"])
    assert vnet0["isolated"] and vnet0["neigh_suppress"]
    assert (vnet0["forged_transmits"], vnet0["mac_changes"], vnet0["promiscuous"]) == (
        "reject", "reject", "reject")  # fmt: skip
    assert vnet0["guests"] == [
        {"port": "vnet0", "mac": "52:54:00:aa:00:00", "ips": ["10.50.0.10", "2001:db8::10"]}
    ]
    drifted = [p for m, p in host_tasks(CATALOG, recorded("thiskernel_port_group_drifted.json"))
               if m == "port_group"]  # fmt: skip
    # a rule is missing: what the elements hold is declared, and applying it rebuilds
    assert drifted and all(g["forged_transmits"] == "reject" for g in drifted)
