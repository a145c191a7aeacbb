#!/usr/bin/python3
# WANT_JSON
"""Micro-segmentation: security groups of VMs and the rules between them, a stateful
firewall at every VM's port (NSX's distributed firewall).

The playbook declares `groups` (members by VM attributes, ingress and egress rules
naming other groups, networks or any, a default per direction) and each host's `vms`
(usually `{{ vms }}` from the inventory). vnetctl resolves membership on the controller
from every host of the play (vnetctl/fleet/microseg: a rule naming a group uses its
members' current addresses, wherever they run) and sends each host only its own VMs'
policy, `ports` (vnet_microseg_ir, checked here again). `groups` and `vms` never reach
the host.

A Linux bridge compiles it to nftables (vnet_nft_segments: table `inet
vnetctl_microseg`, with br_netfilter, replaced whole in one transaction); an Open
vSwitch bridge to conntrack flows (vnet_ovs_microseg, when this vnetctl has it). Ports
are matched by their guest's MAC, so a VM declared before it starts is covered from its
first frame, on whichever host it runs. `state: absent` removes the table.
"""

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_microseg_ir as microseg_ir
    from ansible.module_utils import vnet_nft_segments as nftms
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_microseg_ir as microseg_ir
    import vnet_nft_segments as nftms

RESOURCE = "security_groups"
NOT_PERSISTED = (
    "the policy follows the fleet's membership, which only a run knows: the next run "
    "writes it again after a reboot"
)
RULE = {"from": {"type": "list", "elements": "str"}, "to": {"type": "list", "elements": "str"},
        "action": {"type": "str", "choices": list(microseg_ir.ACTIONS), "default": "allow"},
        "family": {"type": "str", "choices": list(microseg_ir.FAMILIES), "default": "any"},
        "proto": {"type": "str", "choices": list(microseg_ir.PROTOS), "default": "any"},
        "ports": {"type": "list", "elements": "raw"},
        "icmp_types": {"type": "list", "elements": "str"},
        "log": {"type": "bool", "default": False}}  # fmt: skip
GROUP = {"name": {"type": "objname", "required": True},
         "members": {"type": "dict", "required": True},
         "ingress": {"type": "list", "elements": "dict", "options": RULE},
         "egress": {"type": "list", "elements": "dict", "options": RULE},
         "default_ingress": {"type": "str", "choices": list(microseg_ir.DEFAULTS)},
         "default_egress": {"type": "str", "choices": list(microseg_ir.DEFAULTS)}}  # fmt: skip
VM = {"name": {"type": "str", "required": True}, "mac": {"type": "str", "required": True},
      "port": {"type": "ifname"}, "addresses": {"type": "list", "elements": "str"},
      "port_group": {"type": "str"}, "metadata": {"type": "dict"}}  # fmt: skip
ARGUMENT_SPEC = {
    "name": {"type": "objname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "bridge": {"type": "ifname", "required": True},
    "groups": {"type": "list", "elements": "dict", "options": GROUP, "controller": True},
    "vms": {"type": "list", "elements": "dict", "options": VM, "controller": True},
    "ports": {"type": "list", "elements": "dict"},  # the resolved policy (controller)
}
FACTS = {"nft_microseg": nftms.SOURCE, "br_nf_call": nftms.BR_NF}


def _ovs():
    """The Open vSwitch compiler, when this vnetctl has it."""
    try:
        from ansible.module_utils import vnet_ovs_microseg
    except ImportError:
        try:
            import vnet_ovs_microseg
        except ImportError:
            return None
    return vnet_ovs_microseg


def _is_ovs(bridge, facts):
    return facts.kind(bridge) in ("openvswitch",)


def _ir(params):
    ports = params.get("ports") or [] if params["state"] == "present" else []
    return microseg_ir.validate({"bridge": params["bridge"], "ports": ports})


def read(params, facts):
    bridge = params["bridge"]
    if facts.link(bridge) is None:
        raise host.ModuleError("security groups: bridge %s does not exist on this host" % bridge)
    if _is_ovs(bridge, facts):
        ovs = _ovs()
        if ovs is None:
            why = "this vnetctl has no OVS compiler yet (vnet_ovs_microseg)"
            raise host.ModuleError("security groups on Open vSwitch bridge %s: %s" % (bridge, why))
        return ovs.plan(_ir(params)["ports"], facts)["current"]
    current = {"name": params["name"], "bridge": bridge, "chains": nftms.read(facts)}
    current["bridge_nf_call"] = facts.get("br_nf_call")
    return current


def desired(params, current, facts):
    ir = _ir(params)
    if _is_ovs(params["bridge"], facts):
        return _ovs().plan(ir["ports"], facts)["desired"]
    if current["chains"] is None:
        raise host.ModuleError("security groups: nft cannot be run on this host")
    want = dict(current, chains=nftms.desired(ir))
    if ir["ports"]:
        if current["bridge_nf_call"] is None:
            raise host.ModuleError(
                "security groups on Linux bridge %s need br_netfilter (net.bridge.bridge-"
                "nf-call-iptables): this kernel has neither it nor nf_conntrack_bridge, so "
                "bridged traffic cannot be filtered by state" % params["bridge"])  # fmt: skip
        want["bridge_nf_call"] = {"ipv4": "1", "ipv6": "1"}
    return want


def steps(current, desired, facts):
    if "chains" not in desired:  # Open vSwitch: its compiler's own plan
        return _ovs().steps(current, desired, facts)
    out = []
    have, want = current["bridge_nf_call"] or {}, desired["bridge_nf_call"] or {}
    for key, version in zip(nftms.SYSCTLS, ("ipv4", "ipv6")):
        if have.get(version) != want.get(version):
            out.append(host.sysctl_step(key, want[version]))
    if current["chains"] != desired["chains"]:
        out += nftms.rebuild_steps(desired["chains"])
    return out


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
