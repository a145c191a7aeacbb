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
vSwitch bridge to conntrack flows (vnet_ovs_microseg). nftables matches ports by their
guest's MAC, so a VM declared before it starts is covered from its first frame, on
whichever host it runs; OVS flows name the port's OpenFlow number, so there a port that
appears after the run is dropped until the libvirt hook (vnet_vm_attach, installed on
both) or the next run writes its flows. `state: absent` removes the table.
"""

import fnmatch
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_core, vnet_ovs_microseg
    from ansible.module_utils import vnet_microseg_ir as microseg_ir
    from ansible.module_utils import vnet_nft_segments as nftms
    from ansible.module_utils import vnet_sg_document as declared_doc
    from ansible.module_utils import vnet_vm_attach as attach
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_core
    import vnet_host as host
    import vnet_microseg_ir as microseg_ir
    import vnet_nft_segments as nftms
    import vnet_ovs_microseg
    import vnet_sg_document as declared_doc
    import vnet_vm_attach as attach

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
      "port_group": {"type": "str"}, "metadata": {"type": "dict"},
      "host": {"type": "str"}}  # fmt: skip
ARGUMENT_SPEC = {
    "name": {"type": "objname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "bridge": {"type": "ifname", "required": True},
    "groups": {"type": "list", "elements": "dict", "options": GROUP, "controller": True},
    "vms": {"type": "list", "elements": "dict", "options": VM, "controller": True},
    "ports": {"type": "list", "elements": "dict"},  # the resolved policy (controller)
    "templates": {"type": "list", "elements": "dict"},  # groups a VM can join at start
    "declaration": {"type": "dict"},  # groups and this host's vms, kept for snapshot
}
MODULE = "security_groups"  # its file: what its libvirt hook runs (vnet_vm_attach)


OVS = vnet_ovs_microseg
FACTS = dict({"nft_microseg": nftms.SOURCE, "br_nf_call": nftms.BR_NF,
              "microseg_declared": declared_doc.SOURCE}, **attach.FACTS, **OVS.FACTS)  # fmt: skip


def _is_ovs(bridge, facts):
    """An Open vSwitch bridge (either datapath), as the host's model knows it."""
    return facts.net.ovs_bridge(bridge) == bridge


def _ir(params, facts):
    """The policy: the controller's ports, and those of VMs libvirt started since on
    this bridge that a group's template selects (vnetctl's hook recorded them)."""
    if params.get("groups") is not None and params.get("ports") is None:
        raise host.ModuleError(
            "security groups: `groups` reached the host unresolved (ansible-playbook?): "
            "membership is resolved from the whole fleet by vnetctl's controller; run it "
            "with vnetctl, or pass the resolved `ports`")  # fmt: skip
    if params["state"] != "present":
        return microseg_ir.validate({"bridge": params["bridge"], "ports": []})
    ports = list(params.get("ports") or [])
    known = {str(p.get("mac", "")).lower() for p in ports}
    for port, record in sorted(_records(facts).items()):
        mac = str(record.get("mac") or "").lower()
        if mac in known or attached_to(port, facts) != params["bridge"]:
            continue
        joined = _joined(
            params.get("templates") or [],
            record.get("domain") or "",
            mac,
            record.get("metadata") or {},
            record.get("port_group"),
        )
        if joined:
            known.add(mac)
            ports.append(_port_of(port, mac, joined))
    return microseg_ir.validate({"bridge": params["bridge"], "ports": ports})


def _records(facts):
    """{port: {mac, domain}} of the VM ports vnetctl's libvirt hook recorded."""
    found = attach._found(facts) or {}
    out = {}
    for port, text in (found.get("ports") or {}).items():
        try:
            record = vnet_core.loads(text or "")
        except ValueError:
            continue
        if isinstance(record, dict) and vnet_core.ifname_problem(port) is None:
            out[port] = record
    return out


def _joined(templates, domain, mac, metadata, port_group):
    """The templates (groups) a VM named `domain` with NIC `mac` in `port_group` and
    vnetctl metadata `metadata` (the hook's record) joins at start. A template that
    selects by none of those (only hosts, vars) is not joined here: the next run decides."""
    return [t for t in templates
            if (t.get("names") is None or any(fnmatch.fnmatchcase(domain, n) for n in t["names"]))
            and (t.get("macs") is None or mac in t["macs"])
            and (t.get("port_group") is None or t["port_group"] == port_group)
            and all(metadata.get(k) == v for k, v in (t.get("metadata") or {}).items())
            and any(t.get(k) for k in ("names", "macs", "port_group", "metadata"))]  # fmt: skip


def _port_of(port, mac, joined):
    out = {"port": port, "mac": mac, "groups": [t["group"] for t in joined]}
    for direction in microseg_ir.DIRECTIONS:
        out[direction] = [r for t in joined for r in t[direction]]
        out["default_" + direction] = microseg_ir.strictest(
            [t["default_" + direction] for t in joined])  # fmt: skip
    return out


def read(params, facts):
    bridge = params["bridge"]
    if facts.link(bridge) is None:
        raise host.ModuleError("security groups: bridge %s does not exist on this host" % bridge)
    if _is_ovs(bridge, facts):
        flows = OVS.read(facts.get("ovs_flows", bridge) or [], OVS.ofports(facts))
        # the policy rides along (equal on both sides): OVS.plan() compiles it
        current = {"name": params["name"], "bridge": bridge, "ir": _ir(params, facts),
                   "flows": sorted(set(flows["flows"]))}  # fmt: skip
    else:
        current = {"name": params["name"], "bridge": bridge, "chains": nftms.read(facts)}
        current["bridge_nf_call"] = facts.get("br_nf_call")
    # on OVS too: a VM's flows name its port's OpenFlow number, which exists only once
    # libvirt made the port; the hook writes them then, before the guest's first frame
    attached = attach.read(MODULE, params, facts)
    if attached is not None:
        current["attach"] = attached
    return _with_declared(current, params, facts)


def _with_declared(current, params, facts):
    found = declared_doc.read(facts, params["bridge"], params["name"])
    return current if found is declared_doc.MISSING else dict(current, declared=found)


def _want_declared(want, params, current):
    if "declared" in current:
        want["declared"] = declared_doc.desired(params, current["declared"])
    return want


def _hooked(params):
    """The hook's declaration: the task's arguments but the declaration (kept once)."""
    return {k: v for k, v in params.items() if k != "declaration"}


def desired(params, current, facts):
    ir = _ir(params, facts)
    if "flows" in current:  # Open vSwitch
        flows = OVS.desired(ir, OVS.ofports(facts))["flows"]
        want = dict(current, ir=ir, flows=sorted(set(flows)))
        if "attach" in current:
            want["attach"] = attach.desired(MODULE, _hooked(params), current["attach"], facts)
        return _want_declared(want, params, current)
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
    if "attach" in current:
        want["attach"] = attach.desired(MODULE, _hooked(params), current["attach"], facts)
    return _want_declared(want, params, current)


def steps(current, desired, facts):
    hook = attach.steps(MODULE, desired, current.get("attach"), desired.get("attach"))
    hook += declared_doc.steps(desired, current.get("declared"), desired.get("declared"))
    if "flows" in desired:  # Open vSwitch: one bundle to the policy, its compiler's plan
        changed = current["flows"] != desired["flows"]
        return (OVS.plan(desired["ir"], facts) if changed else []) + hook
    out = []
    have, want = current["bridge_nf_call"] or {}, desired["bridge_nf_call"] or {}
    for key, version in zip(nftms.SYSCTLS, ("ipv4", "ipv6")):
        if have.get(version) != want.get(version):
            out.append(host.sysctl_step(key, want[version]))
    if current["chains"] != desired["chains"]:
        out += nftms.rebuild_steps(desired["chains"])
    return out + hook


# ---- snapshot ----------------------------------------------------------------------------

SNAPSHOT_ORDER = 90  # after the bridges and meshes its ports are on
SNAPSHOT_FLEET = True  # one play of every host with the task: membership spans them
DRIFT = "drift"  # a snapshot task's key for the controller (vnetctl/fleet/microseg/snapshot)


def snapshot(facts):
    """Each task's declared groups and VMs as its document on the host keeps them, when
    the host's table (or flows) is what they compiled to; otherwise the task says so
    (DRIFT), rather than declaring what the host does not enforce."""
    out = []
    for found in declared_doc.documents(facts):
        params = {"name": found["name"], "bridge": found["bridge"],
                  "groups": found.get("groups") or [], "vms": found.get("vms") or []}  # fmt: skip
        why = _unlike_document(found, facts)
        out.append(dict(params, **{DRIFT: why}) if why else params)
    return out


def _unlike_document(found, facts):
    """Why the host's policy is not what its document compiles to; None when it is."""
    params = {"name": found["name"], "bridge": found["bridge"], "state": "present",
              "ports": found.get("ports") or [],
              "templates": found.get("templates") or []}  # fmt: skip
    try:
        current = read(params, facts)
        want = desired(params, current, facts)
    except host.ModuleError as exc:
        return "cannot be compared with its declaration: %s" % exc
    for key in ("chains", "flows"):
        if key in current and current[key] != want[key]:
            return "its rules differ from the policy its declaration compiles to (%s)" % (
                ", ".join(_differing(current[key], want[key])))  # fmt: skip
    return None


def _differing(have, want):
    if isinstance(have, dict) and isinstance(want, dict):
        names = sorted(c for c in set(have) | set(want) if have.get(c) != want.get(c))
        return ["chain " + n for n in names[:5]] + (["..."] if len(names) > 5 else [])
    return ["%d flows differ" % len(set(have or []) ^ set(want or []))]


# ---- what vnetctl's libvirt hook asks (vnet_vm_hook) --------------------------------------


def attached_to(port, facts):
    """The bridge `port` is a port of, or None. OVSDB's ports are asked (as
    ovs_port_group does): the host's model finds a userspace datapath's port (a tap, a
    veth) only once the `ovs` fact was read, which the libvirt hook's facts have not."""
    master = (facts.link(port) or {}).get("master")
    if master and facts.kind(master) == "bridge":
        return master
    ports = (facts.get("ovs_config") or {}).get("ports") or {}
    return (ports.get(port) or {}).get("bridge") or facts.net.ovs_bridge(port)


def claims(params, port, facts):
    """Whether a VM port that just appeared is the policy's: its MAC is declared, or a
    group's template selects its domain (the hook recorded both before asking)."""
    record = _records(facts).get(port) or {}
    mac = str(record.get("mac") or "").lower()
    declared = {str(p.get("mac", "")).lower() for p in params.get("ports") or []}
    return mac in declared or bool(_joined(params.get("templates") or [],
                                           record.get("domain") or "", mac,
                                           record.get("metadata") or {},
                                           record.get("port_group")))  # fmt: skip


def scoped(declared, ports, mac):
    """The whole policy again (the table is written whole): the new port joins it."""
    return host.normalize_params(ARGUMENT_SPEC, dict(declared, state="present"))


def members_of(params, facts):
    return []  # no promiscuous copies here


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
