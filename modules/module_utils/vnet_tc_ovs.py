"""traffic_shaping on an Open vSwitch port (`ovs: true`): a bond, or a port of one
interface. Each interface (a bond's member) carries the whole policy, as NIOC applies
reservations, limits and shares per physical adapter: an active-backup bond sends
through one member at a time, each shaped alike; a balance-slb or balance-tcp bond
spreads guests over its members, each member holding the limits at its own speed.

OVS and the shaper share the members' root qdisc. Measured on OVS 3.1 (userspace
datapath, veth members): with no QoS row on the port, ovs-vswitchd leaves a qdisc on
reconfiguration but deletes it when it starts (it reads an HTB 1: as its own
`linux-htb` and sets the port's QoS, none, by deleting it); with a `linux-htb` QoS it
replaces the root with its own. With a `linux-noop` QoS row it never touches the
qdisc: the shaper gives the port one, made before any tc step and cleared after the
last. A port whose QoS is another type is OVS's to shape: refused. OVS's own queues
(`set_queue`) are no way around it here: the userspace datapath turns a queue into an
skb priority its AF_PACKET send never passes on, so every frame lands in the default
queue (README: Traffic shaping through Open vSwitch).

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_ovs
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_ovs

NOOP = "linux-noop"
QOS_REF = "@vnetctl_noop"


def parse(tables):
    """{port: {"interfaces": [name], "qos": QoS type or None}} (pure)."""
    names = {i["_uuid"]: i["name"] for i in tables["Interface"]}
    types = {q["_uuid"]: q["type"] for q in tables["QoS"]}
    out = {}
    for port in tables["Port"]:
        members = (
            port["interfaces"] if isinstance(port["interfaces"], list) else [port["interfaces"]]
        )
        qos = port.get("qos")
        qos = qos[0] if isinstance(qos, list) and qos else qos or None
        out[port["name"]] = {
            "interfaces": sorted(names[u] for u in members if u in names),
            "qos": types.get(qos, "unknown") if qos else None,
        }
    return out


# the ports, their interfaces and QoS types: None where Open vSwitch is not running
PORTS = vnet_ovs.ovsdb(
    {"Port": ["name", "interfaces", "qos"], "QoS": ["_uuid", "type"],
     "Interface": ["_uuid", "name"]}, parse)  # fmt: skip


def qos_steps(port, have, want):
    """ovs-vsctl steps taking `port`'s QoS type from `have` to `want` (linux-noop or
    None); a row the shaper made goes with the reference to it (QoS rows are roots in
    OVSDB: a bare `clear` would leave it behind)."""
    if have == want:
        return []
    out = []
    if have is not None:
        out += [step("destroy", "qos", port), step("clear", "port", port, "qos")]
    if want is not None:
        out += [step("--id=" + QOS_REF, "create", "qos", "type=" + want),
                step("set", "port", port, "qos=" + QOS_REF)]  # fmt: skip
    return out


def step(*tokens):
    return vnet_core.step("ovs-vsctl", *tokens)
