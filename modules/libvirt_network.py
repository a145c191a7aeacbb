#!/usr/bin/python3
# WANT_JSON
"""A libvirt network in bridge mode on an existing bridge, Linux or Open vSwitch (with
`<virtualport type='openvswitch'/>`), and its port groups: what a VM's interface names
(`<source network='prod' portgroup='db'/>`) and libvirt applies as the VM's port is made,
with no agent of ours. Reconciled exactly: the definition is what the task declares
(anything else in it, `extra`, goes), drift on every field, read with `virsh
net-dumpxml` (the definition and the running network).

A port group is the policy port_group and ovs_port_group take (vnet_vm_portgroups: its
keys, and how they map): on Open vSwitch its VLANs (an access tag, trunks, a native
VLAN) and bandwidth are libvirt's; on a Linux bridge libvirt takes no VLAN (port_group
gives them) and its bandwidth needs tc's sfq and police, refused where the kernel lacks
them. The group's nwfilter is kept in the network's metadata: libvirt applies no filter
from a network.

A running network is changed without touching a running VM's port: port groups with
`virsh net-update --live` (VMs that attach later get them; ports made earlier keep theirs
until their VM restarts); the bridge, virtualport or `extra` by restarting the network
only when no guest is attached (a restart leaves the guests' taps in the bridge but
unknown to the network: libvirt drops their ports, net-port-list is empty after it),
else only the definition changes. `next_start` lists how the running network differs
from its definition, which it takes at its next start: what a run left for then (it
had guests), or what was changed in it by hand (`virsh net-update --live`: a run puts
it back). `state: absent` and `active: false` are refused while guests are attached.
Guests are counted with `virsh net-port-list`. libvirt keeps the definition and
autostart itself.
"""

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_libvirt_net as virtnet
    from ansible.module_utils import vnet_tc_plan as tc_plan
    from ansible.module_utils import vnet_vm_portgroups as policies
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_libvirt_net as virtnet
    import vnet_tc_plan as tc_plan
    import vnet_vm_portgroups as policies

RESOURCE = "libvirt network"
NOT_PERSISTED = (  # no boot configuration: why
    "libvirt keeps a network's definition and autostart itself (/etc/libvirt/qemu/networks)"
)
ARGUMENT_SPEC = {
    "name": {"type": "objname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "bridge": {"type": "ifname"},
    "virtualport": {"type": "str", "choices": ["none", "openvswitch"]},  # unset: the bridge's
    "portgroups": {"type": "list", "elements": "dict", "options": policies.POLICY},
    "autostart": {"type": "bool", "default": True},
    "active": {"type": "bool", "default": True},
}
FACTS = dict(virtnet.FACTS, tc_kernel=tc_plan.KERNEL)
DEFINITION = ("persistent", "bridge", "virtualport", "portgroups", "extra")
RESTART_FIELDS = ("bridge", "virtualport", "extra")  # a running network takes them when started
SHAPERS = ("NET_SCH_SFQ", "NET_ACT_POLICE")  # libvirt's <bandwidth> on a Linux bridge


def read(params, facts):
    name = params["name"]
    found = virtnet.available(facts)["networks"].get(name)
    if found is None:
        return {"name": name, "state": "absent"}
    config = _bridge_mode(name, found["config"])
    return {
        "name": name, "state": "present",
        "persistent": found["persistent"], "active": found["active"],
        "autostart": found["autostart"],
        "bridge": config["bridge"], "virtualport": config["virtualport"] or "none",
        "portgroups": config["portgroups"], "extra": config["extra"],
        "next_start": _running_differs(config, found) if found["active"] else [],
    }  # fmt: skip


def _bridge_mode(name, xml):
    config = virtnet.read_network(xml)
    if config["forward"] != "bridge":
        raise host.ModuleError("libvirt network %s is not in bridge mode (forward mode: %s): "
                               "vnetctl manages bridge-mode networks only and leaves it as "
                               "it is" % (name, config["forward"] or "none"))  # fmt: skip
    return config


def _comparable(model):
    """The fields a running network is compared on: the filter is a note in the
    definition's metadata, which libvirt applies to no port."""
    groups = {
        g: {k: v for k, v in pg.items() if k != "filter"} for g, pg in model["portgroups"].items()
    }
    return {"bridge": model["bridge"], "virtualport": model["virtualport"] or "none",
            "extra": model["extra"], "portgroups": groups}  # fmt: skip


def _running_differs(config, found):
    """What the running network has otherwise than its definition: a field, a port
    group's field, or a port group one of them lacks (`portgroups.NAME`)."""
    live = _comparable(virtnet.read_network(found["live"]))
    defined = _comparable(config)
    fields = set()
    for change in host.diff_fields(live, defined, every=True):
        path = change["field"].split(".")
        whole = path[0] == "portgroups" and not (path[1] in live["portgroups"]
                                                 and path[1] in defined["portgroups"])  # fmt: skip
        fields.add(".".join(path[:2]) if whole else ".".join(path[:3]))
    return sorted(fields)


def desired(params, current, facts):
    name = params["name"]
    if params["state"] == "absent":
        if current["state"] == "present" and current["active"]:
            _refuse_with_guests(name, facts, "remove it")
        return {"name": name, "state": "absent"}
    want = dict(current) if current["state"] == "present" else {"portgroups": {}}
    bridge = params["bridge"] or want.get("bridge")
    if bridge is None:
        raise host.ModuleError("libvirt network %s: bridge is required to define it" % name)
    kept = want.get("virtualport") if want.get("bridge") == bridge else None
    virtualport = _virtualport(name, bridge, params["virtualport"], facts, kept)
    ovs = virtualport == "openvswitch"
    groups = want["portgroups"]
    if params["portgroups"] is not None:
        groups = _portgroups(name, params["portgroups"], ovs)
    _check_shaping(name, groups, ovs, facts)
    _check_filters(name, groups, facts)
    want.update(name=name, state="present", persistent=True, bridge=bridge, virtualport=virtualport,
                portgroups=groups, extra=[], autostart=params["autostart"],
                active=params["active"])  # fmt: skip
    if not want["active"] and current.get("active"):
        _refuse_with_guests(name, facts, "stop it")
    want["next_start"] = _left_running(name, current, want, facts)
    return want


def _virtualport(name, bridge, declared, facts, kept=None):
    """`openvswitch` on an Open vSwitch bridge, `none` on a Linux bridge: what the bridge
    is, or, for a bridge that does not exist (yet, or any more), what the task declares
    or else the network's own (`kept`)."""
    ovs = facts.ovs
    if ovs is not None and bridge in ovs["bridges"]:
        found = "openvswitch"
    elif facts.link(bridge) is not None and facts.kind(bridge) == "bridge":
        found = "none"
    elif declared is None and kept is not None:
        return kept
    elif declared is None:
        raise host.ModuleError("libvirt network %s: bridge %s does not exist on this host; make "
                               "it first, or declare virtualport (none: a Linux bridge, "
                               "openvswitch)" % (name, bridge))  # fmt: skip
    else:
        return declared
    if declared not in (None, found):
        kind = "an Open vSwitch" if found == "openvswitch" else "a Linux"
        raise host.ModuleError("libvirt network %s: %s is %s bridge, so virtualport is %s, not %s"
                               % (name, bridge, kind, found, declared))  # fmt: skip
    return found


def _portgroups(name, declared, ovs):
    groups = {}
    for policy in declared:
        if policy["name"] in groups:
            raise host.ModuleError("libvirt network %s: port group %s is declared twice"
                                   % (name, policy["name"]))  # fmt: skip
        try:
            groups[policy["name"]] = policies.compile_portgroup(policy, ovs)
        except host.ModuleError as exc:
            raise host.ModuleError("libvirt network %s: %s" % (name, exc)) from None
    defaults = sorted(g for g, fields in groups.items() if fields["default"])
    if len(defaults) > 1:
        raise host.ModuleError("libvirt network %s: one default port group at most, not %s"
                               % (name, ", ".join(defaults)))  # fmt: skip
    return groups


def _check_shaping(name, groups, ovs, facts):
    shaped = sorted(g for g, f in groups.items() if _shaped(f))
    kernel = facts.get("tc_kernel") if shaped and not ovs else None
    missing = [option for option in SHAPERS if kernel is not None and option not in kernel]
    if missing:
        raise host.ModuleError(
            "libvirt network %s: port group %s has bandwidth, which libvirt applies on a "
            "Linux bridge with tc's sfq qdisc and police action; this host's kernel lacks %s, "
            "so each of its VMs would fail to start. Shape their ports with traffic_shaping "
            "(egress_limit, ingress_limit), or use an Open vSwitch bridge (OVS QoS). Nothing "
            "was changed." % (name, shaped[0], ", ".join("CONFIG_" + o for o in missing))
        )


def _shaped(fields):
    return any(v is not None for rates in fields["bandwidth"].values() for v in rates.values())


def _check_filters(name, groups, facts):
    known = facts.get("libvirt")["filters"]
    for group, fields in sorted(groups.items()):
        if known and fields["filter"] is not None and fields["filter"] not in known:
            raise host.ModuleError("libvirt network %s: port group %s names nwfilter %s, which "
                                   "this host does not define (virsh nwfilter-list)"
                                   % (name, group, fields["filter"]))  # fmt: skip


def _found(name, facts):
    return facts.get("libvirt")["networks"].get(name)


def _guests(name, facts):
    """Guest interfaces attached to the network (its ports)."""
    found = _found(name, facts)
    return found["ports"] if found and found["active"] else 0


def _refuse_with_guests(name, facts, doing):
    guests = _guests(name, facts)
    if guests:
        raise host.ModuleError("libvirt network %s has %d guest interface(s) attached: stop or "
                               "move them before you %s. Nothing was changed."
                               % (name, guests, doing))  # fmt: skip


def _left_running(name, current, want, facts):
    """The fields the running network keeps otherwise than the new definition until it
    next starts: none when no guest is attached (it is restarted)."""
    if not (current.get("active") and want["active"]) or not _guests(name, facts):
        return []
    live = _comparable(virtnet.read_network(_found(name, facts)["live"]))
    return [f for f in RESTART_FIELDS if host.diff_fields({f: live[f]}, {f: want[f]}, every=True)]


def steps(current, desired, facts):
    name = desired["name"]
    present, active = current["state"] == "present", current.get("active", False)
    found = _found(name, facts)
    if desired["state"] == "absent":
        undefine = (
            [host.virsh_step("net-undefine", name)] if present and current["persistent"] else []
        )
        return ([host.virsh_step("net-destroy", name)] if active else []) + undefine
    out = []
    if not present or host.diff_fields(
        _part(current, DEFINITION), _part(desired, DEFINITION), every=True
    ):
        xml = virtnet.network_xml(name, _model(desired), found["uuid"] if found else None)
        out.append(host.virsh_step("net-define", name, xml=xml))
    if active and desired["active"]:
        out += _running(name, found, desired)
    elif desired["active"]:
        out.append(host.virsh_step("net-start", name))
    elif active:
        out.append(host.virsh_step("net-destroy", name))
    if desired["autostart"] != current.get("autostart", False):
        words = () if desired["autostart"] else ("--disable",)
        out.append(host.virsh_step("net-autostart", name, *words))
    return out


def _part(state, fields):
    return {f: state.get(f) for f in fields}


def _model(state):
    return dict(_part(state, DEFINITION), virtualport=None if state["virtualport"] == "none"
                else state["virtualport"])  # fmt: skip


def _running(name, found, desired):
    """A running network brought to the definition: restarted where a port group does
    not say it all (never with guests attached), else its port groups updated live."""
    live = virtnet.read_network(found["live"])
    comparable, want = _comparable(live), _comparable(_model(desired))
    restart = [f for f in RESTART_FIELDS if f not in desired["next_start"]
               and host.diff_fields({f: comparable[f]}, {f: want[f]}, every=True)]  # fmt: skip
    if restart:
        if found["ports"]:
            raise host.ModuleError("libvirt network %s: its %s would need a restart, which "
                                   "would leave its %d guest interface(s) unknown to it"
                                   % (name, ", ".join(restart), found["ports"]))  # fmt: skip
        return [host.virsh_step("net-destroy", name), host.virsh_step("net-start", name)]
    return _portgroup_updates(name, comparable["portgroups"], want["portgroups"], desired)


def _portgroup_updates(name, live, want, desired):
    """`net-update --live` per port group that differs: removed ones first, then those
    that stop being the default, the other changes, the new ones (libvirt allows one
    default at a time)."""
    gone = [("delete", g, live[g]) for g in sorted(live) if g not in want]
    changed = sorted((g for g in want if g in live and live[g] != want[g]),
                     key=lambda g: (not live[g]["default"] or want[g]["default"], g))  # fmt: skip
    new = [("add-last", g, want[g]) for g in sorted(want) if g not in live]
    updates = gone + [("modify", g, want[g]) for g in changed] + new
    extra = desired["extra"]
    return [host.virsh_step("net-update", name, verb, "portgroup", group, "--live",
                            xml=virtnet.portgroup_xml(group, fields, extra))
            for verb, group, fields in updates]  # fmt: skip


SNAPSHOT_ORDER = 30  # after the bridges (and their port groups) it puts VMs on


def snapshot(facts):
    """Each persistent bridge-mode network; one with parts vnetctl does not manage
    (`extra`: DNS, a MAC table manager...) is left to libvirt."""
    found = facts.get("libvirt")
    out = []
    for name, network in sorted(found["networks"].items() if found["status"] == "ok" else ()):
        config = virtnet.read_network(network["config"])
        if config["forward"] != "bridge" or config["extra"] or not network["persistent"]:
            continue
        groups = [policies.policy_of(g, f) for g, f in sorted(config["portgroups"].items())]
        out.append({"name": name, "bridge": config["bridge"],
                    "virtualport": config["virtualport"] or "none", "portgroups": groups,
                    "autostart": network["autostart"], "active": network["active"]})  # fmt: skip
    return out


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
