"""The OVS modules are module files like the others: ansible-playbook runs
playbooks/ovs-teaming.yml with them, from an Ansible library path, on an OVS lab host
(their module_utils, vnet_ovs_config included, travel with them)."""

from __future__ import annotations

import pytest
from test_ansible_compat import ansible_playbook, recap

from tests.labhosts import own_lab
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("oa", tmp_path_factory.mktemp("oa"), hosts=1, ovs=True) as state:
        yield state


def test_ovs_teaming_runs_unchanged_under_ansible(lab):
    first = ansible_playbook(lab, "playbooks/ovs-teaming.yml")
    assert first.returncode == 0, first.stdout + first.stderr
    # the bridge, and the db group's port security: the bridge's gate (vnet_ovs_portsec)
    assert recap(first.stdout)["changed"] == 2 and recap(first.stdout)["failed"] == 0
    bonds = host_exec(lab.name, lab.host_names[0], ["ovs-vsctl", "get", "port", "uplink",
                                                    "bond_mode"]).stdout  # fmt: skip
    assert bonds.strip() == "balance-tcp"
    again = ansible_playbook(lab, "playbooks/ovs-teaming.yml")
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout
