"""The security of a port group as vSphere's distributed switch has it: three settings,
each `reject` or `accept`, shared by port_group (Linux bridges) and ovs_port_group.

    forged_transmits  reject: frames from the VM whose source MAC (and ARP sender,
                      neighbour discovery link-layer option) is not its vNIC's MAC are
                      dropped (and, with its IPs declared, those from other addresses)
    mac_changes       reject: unicast frames to the VM for a MAC other than its vNIC's
                      are not delivered (a guest that changed its MAC receives nothing
                      for the new one); broadcast and multicast still are
    promiscuous       accept: the VM's port also gets a copy of the frames of its group's
                      segment (the other ports of its bridge, in its VLAN)

Unset, each is `reject`: the distributed switch's default for a new port group (the
standard vSwitch rejects promiscuous mode only, and accepts the other two).
`port_security: true|false` is a shorthand kept for playbooks written before the three
existed: forged_transmits and mac_changes both `reject` or both `accept`; it cannot be
declared with either of them. A guest's `ips` are checked with its MAC: they need
forged_transmits `reject`.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

SETTINGS = ("promiscuous", "mac_changes", "forged_transmits")
CHOICES = ("reject", "accept")
DEFAULT = "reject"
SHORTHAND = ("forged_transmits", "mac_changes")  # what port_security stands for
# the arguments, as both modules declare them
SPEC = dict({name: {"type": "str", "choices": list(CHOICES)} for name in SETTINGS},
            port_security={"type": "bool"})  # fmt: skip


def effective(params):
    """{setting: "reject"|"accept"} the task declares, defaults and shorthand applied;
    ModuleError for the shorthand beside what it stands for."""
    shorthand = params.get("port_security")
    both = [name for name in SHORTHAND if params.get(name) is not None]
    if shorthand is not None and both:
        raise vnet_core.ModuleError(
            "port_security is a shorthand for forged_transmits and mac_changes: declare "
            "it or them, not both (%s)" % ", ".join(both)
        )
    out = {name: params.get(name) or DEFAULT for name in SETTINGS}
    if shorthand is not None:
        out.update(dict.fromkeys(SHORTHAND, "reject" if shorthand else "accept"))
    return out


def rejects(settings, name):
    return settings[name] == "reject"


def word(rejected):
    """A setting as it is written: "reject" or "accept"."""
    return "reject" if rejected else "accept"


def check_ips(settings, declared, what):
    """IPs are checked with the MAC (forged_transmits reject): declared without, they
    would guard nothing."""
    if declared and not rejects(settings, "forged_transmits"):
        raise vnet_core.ModuleError(
            "%s: ips are checked only with forged_transmits reject (the guest's frames are "
            "not checked at all with accept)" % what
        )
