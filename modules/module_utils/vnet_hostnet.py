"""The host's network as one model: each device with its kind, what it sits on (its
lowers: a bridge's or bond's ports, a VLAN's parent, a VXLAN's underlay device, an Open
vSwitch bridge's ports and bond members) and what sits on it (its uppers), its
addresses, the routes of every table, and its tc qdiscs and classes.

It is built from the fact sources (links and addrs; routes, `ovs` and `tc` when a
module declared them or the recorded facts hold them), the first time something asks
for it (`facts.net`), and again after each change (vnet_facts' refresh). Modules read
links, addresses and routes through it, and so do the management-path guard
(vnet_safety), the addresses and routes that move with a port (vnet_ip) and read(),
whose output is the rollback target.

Open vSwitch ports have no kernel master in the userspace datapath (and `ovs-system` in
the kernel's): an OVS bridge's ports are read from OVSDB (the built-in `ovs` fact),
only for a device that may belong to OVS.

Which ports are a VM's is decided here, once (vm_port), from what the host itself says:
the kind of device (a tap, what libvirt gives qemu for a NIC on a bridge, or a macvtap),
libvirt's marks on an OVS interface, the interfaces of the domains libvirt runs (its
status files under /run/libvirt: a container's veth too), and a port group's claim that
the host keeps (an OVS interface naming its group; a port a Linux port group guards in
vnetctl's nftables table). Bridges own the ports they declare and leave a VM's alone
(linux_bridge, ovs_bridge).

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_fib
    from ansible.module_utils import vnet_guests as libvirt_status
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_fib
    import vnet_guests as libvirt_status

PARENT_KINDS = ("vlan", "macvlan", "macvtap", "ipvlan")  # `link` names their lower device
OVS_KINDS = ("openvswitch", "tun")  # an OVS bridge's own interface, in either datapath
OVS_DATAPATH = "ovs-system"  # the kernel datapath's master of every OVS port
OVS_NETDEV = "ovs-netdev"  # the userspace datapath's own tap, no port of anything
# external_ids libvirt sets on the OVS interface of a VM's NIC; the one by which whatever
# makes a VM port names the ovs_port_group it joins
LIBVIRT_MARKS = ("attached-mac", "iface-id", "vm-id")
GROUP_MARK = "vnetctl-port-group"
# vnetctl's nftables table (port_group's port security) and its set of guarded ports
NFT_BRIDGE = vnet_facts.command(["nft", "-j", "list", "ruleset", "bridge"], optional=True)
GUARDED = ("vnetctl", "guarded")


LIBVIRT_NICS = libvirt_status.LIBVIRT_NICS  # the running domains' NICs and metadata
# what vm_port reads beyond the built-in sources (the bridge modules declare them)
VM_PORT_SOURCES = {"nft_bridge": NFT_BRIDGE, "libvirt_nics": LIBVIRT_NICS}


class Device:
    """One device: `name`, `kind` (None for a NIC), `mtu`, `up` (set up), `master`,
    `parent` (a VLAN's or macvlan's lower device, a VXLAN's underlay), `info` (the
    kind's settings, iproute2's info_data), `link` (the whole `ip -j -d link` entry)
    and `addresses`: [{cidr, local, family, scope, secondary}] in the kernel's order
    (read with the first question about addresses: Network)."""

    def __init__(self, link):
        info = link.get("linkinfo") or {}
        self.link, self.name, self.mtu = link, link["ifname"], link.get("mtu")
        self.kind, self.info = info.get("info_kind"), info.get("info_data") or {}
        self.up = "UP" in (link.get("flags") or [])
        master = link.get("master")
        self.master = master if master != OVS_DATAPATH else None
        self.parent = link.get("link") if self.kind in PARENT_KINDS else None
        if self.kind == "vxlan":
            self.parent = self.info.get("link")
        self.addresses = []


def _address(entry):
    return {
        "cidr": "%s/%s" % (entry["local"], entry["prefixlen"]),
        "local": entry["local"],
        "family": 6 if entry.get("family") == "inet6" else 4,
        "scope": entry.get("scope"),
        "secondary": bool(entry.get("secondary")),
    }


class Network:
    """The model of `facts` (vnet_facts.Facts): see the module's docstring."""

    def __init__(self, facts):
        self.facts = facts
        self.links = {link["ifname"]: link for link in facts.get("links")}
        self.devices = {name: Device(link) for name, link in self.links.items()}
        self._ports = {}
        for device in self.devices.values():
            if device.master is not None:
                self._ports.setdefault(device.master, []).append(device.name)
        self._ovs, self._routes, self._orphans = False, None, None
        self._guarded, self._nics = None, None

    def _addressed(self):
        """The devices' addresses, read (`addrs`) the first time one is asked for; and
        those of devices `links` does not list (made in between, or planned: the
        controller's preflight adds the addresses earlier tasks give), as Devices of
        their own."""
        if self._orphans is None:
            self._orphans = {}
            for entry in self.facts.get("addrs"):
                held = [_address(a) for a in entry.get("addr_info", []) if "local" in a]
                device = self.devices.get(entry.get("ifname"))
                if device is None:
                    device = self._orphans[entry.get("ifname")] = Device(entry)
                device.addresses = held
        return self.devices

    def addressed_device(self, name):
        """The device `name` as its addresses' entry describes it (`mtu`, `addresses`),
        also one `links` does not list; None when neither lists it."""
        return self._addressed().get(name) or self._orphans.get(name)

    # ---- devices and how they stack ----------------------------------------------------

    def device(self, name):
        return self.devices.get(name)

    def kind(self, name):
        device = self.devices.get(name)
        return device.kind if device is not None else None

    def ports(self, master):
        """The kernel's ports of `master` (a bridge's, a bond's members), sorted."""
        return sorted(self._ports.get(master, ()))

    def lowers(self, name):
        """What `name` sits on: its kernel ports, its parent, and an OVS bridge's ports
        (each interface of each port: a bond's members), sorted."""
        device = self.devices.get(name)
        if device is None:
            return []
        found = set(self.ports(name))
        if device.parent:
            found.add(device.parent)
        bridge = self.ovs_bridge(name)
        if bridge == name:
            internal = self._ovs_internal()
            found |= {i for p in self.ovs_ports(name).values() for i in p if i not in internal}
        return sorted(found - {name})

    def uppers(self, name):
        """What sits on `name`: its master (a bridge, a bond, its OVS bridge) and the
        devices whose parent it is, sorted."""
        found = {d.name for d in self.devices.values() if d.parent == name}
        device = self.devices.get(name)
        if device is not None and device.master:
            found.add(device.master)
        bridge = self.ovs_bridge(name)
        if bridge is not None and bridge != name:
            found.add(bridge)
        return sorted(found)

    def check_joining(self, upper, kind, role, lowers):
        """Refuse, before any change, what cannot become a port of `upper` (a `kind`'s
        `role`: a bridge's port, a bond's member): a device that does not exist, `upper`
        itself, a port of another master (`ovs-system` included)."""
        for name in lowers:
            device = self.devices.get(name)
            if device is None:
                raise vnet_core.ModuleError("%s %s of %s %s does not exist on this host"
                                            % (role, name, kind, upper))  # fmt: skip
            if name == upper:
                raise vnet_core.ModuleError("%s %s cannot be its own %s" % (kind, upper, role))
            master = device.link.get("master")
            if master and master != upper:
                raise vnet_core.ModuleError("%s is already a port of %s; remove it there first"
                                            % (name, master))  # fmt: skip

    def below(self, name):
        """`name` and everything under it, lowers of lowers."""
        seen, todo = set(), [name]
        while todo:
            item = todo.pop()
            if item not in seen:
                seen.add(item)
                todo += self.lowers(item)
        return seen

    # ---- addresses -----------------------------------------------------------------

    def addresses(self, name, scopes=("global",)):
        """The device's addresses ("a/len") of those scopes, sorted."""
        device = self.addressed_device(name)
        held = device.addresses if device is not None else []
        return sorted(a["cidr"] for a in held if a["scope"] in scopes)

    def entries(self, name):
        """The device's addresses as the kernel lists them (see Device)."""
        device = self.addressed_device(name)
        return list(device.addresses) if device is not None else []

    def addressed(self):
        """Every device that holds an address, those `links` does not list included."""
        devices = self._addressed()
        return sorted({n for n, d in devices.items() if d.addresses} | set(self._orphans))

    def holder(self, address):
        """The device holding the address `address` (any scope), or None."""
        for device in self._addressed().values():
            if any(a["local"] == address for a in device.addresses):
                return device.name
        for name, device in self._orphans.items():
            if any(a["local"] == address for a in device.addresses):
                return name
        return None

    def holders(self):
        """Every device that holds a global address."""
        return {n for n, d in self._addressed().items() if any(a["scope"] == "global"
                                                          for a in d.addresses)}  # fmt: skip

    def on_link(self, address):
        """The devices with a global address whose network holds `address` (an
        ipaddress address), sorted."""
        import ipaddress  # noqa: PLC0415 (only where a network is asked about: ~1 ms)

        return sorted(
            name for name, device in self._addressed().items()
            if any(a["scope"] == "global" and address in ipaddress.ip_interface(a["cidr"]).network
                   for a in device.addresses)
        )  # fmt: skip

    # ---- routes --------------------------------------------------------------------

    def routes(self):
        """Every route of every table, both families (vnet_fib.record). The source is
        declared here, as vnet_fib declares it; recorded facts without it: ModuleError."""
        if self._routes is None:
            self.facts.declare(vnet_fib.ROUTES)
            self._routes = vnet_fib.routes(self.facts)
        return self._routes

    def through(self, name):
        """The texts of the movable routes through `name`, in every table, sorted."""
        return sorted(vnet_fib.text(r) for r in self.routes()
                      if r["dev"] == name and vnet_fib.movable(r))  # fmt: skip

    # ---- VM ports -------------------------------------------------------------------

    def vm_port(self, name):
        """Why `name` is a VM's port (a phrase), or None: an OVS interface libvirt marked
        (external_ids attached-mac, iface-id, vm-id) or that names a port group
        (vnetctl-port-group); a tap or a macvtap that Open vSwitch did not make; a port a
        Linux port group guards (vnetctl's nftables set `guarded`); an interface of a
        domain libvirt runs. OVSDB is read only for a device that may be OVS's, nftables
        only for a Linux bridge's port, libvirt's files only for a device no rule before
        names (each once per play)."""
        device = self.devices.get(name)
        kind = device.kind if device is not None else None
        ovs_maybe = device is None or not device.master or kind in OVS_KINDS
        interfaces = ((self._ovs_summary() if ovs_maybe else None) or {}).get("interfaces")
        ids = ((interfaces or {}).get(name) or {}).get("external_ids") or {}
        for mark in LIBVIRT_MARKS:
            if mark in ids:
                return "marked by libvirt (external_ids:%s)" % mark
        if ids.get(GROUP_MARK):
            return "in port group %s (external_ids:%s)" % (ids[GROUP_MARK], GROUP_MARK)
        if kind == "macvtap":
            return "a macvtap"
        tap = kind == "tun" and device.info.get("type") == "tap"
        if tap and not (ovs_maybe and self._ovs_made(name)):
            return "a tap"
        if device is not None and self.libvirt_nic(name) is not None:
            return "an interface of a domain libvirt runs (/run/libvirt)"
        if device is not None and device.master and name in self._guarded_ports():
            return "guarded by a port group (nftables)"
        return None

    def libvirt_nics(self):
        """The running domains' NICs (LIBVIRT_NICS); none without libvirt or them recorded."""
        self._nics = self._nics or self._declared("libvirt_nics", LIBVIRT_NICS) or []
        return self._nics

    def libvirt_nic(self, dev):
        """The NIC of a running domain whose host device is `dev`, or None."""
        return next((n for n in self.libvirt_nics() if n["dev"] == dev), None)

    def _declared(self, name, source):
        """A fact source the model declares itself, read when first asked for; None
        from a recording without it."""
        self.facts.declare({name: source})
        try:
            return self.facts.get(name)
        except vnet_facts.Missing:
            return None

    def _guarded_ports(self):
        """The ports in vnetctl's nftables set of guarded ports (port_group); none where
        nft cannot be run or a recording has no `nft_bridge`."""
        if self._guarded is None:
            ruleset = self._declared("nft_bridge", NFT_BRIDGE) or {}
            self._guarded = set()
            for item in ruleset.get("nftables", []) if isinstance(ruleset, dict) else []:
                body = item.get("set")
                if isinstance(body, dict) and (body.get("table"), body.get("name")) == GUARDED:
                    for elem in body.get("elem") or []:
                        if isinstance(elem, dict):  # an element with options: {"elem": {"val"}}
                            elem = (elem.get("elem") or {}).get("val")
                        if isinstance(elem, str):
                            self._guarded.add(elem)
        return self._guarded

    # ---- Open vSwitch, tc ----------------------------------------------------------

    def _ovs_summary(self):
        if self._ovs is False:
            try:
                self._ovs = self.facts.get("ovs")
            except vnet_core.ModuleError:  # recorded before OVS facts existed
                self._ovs = None
        return self._ovs

    def ovs_ports(self, bridge):
        """{port: [its interfaces]} of an OVS bridge (a bond: its members)."""
        ovs = self._ovs_summary() or {}
        ports = ovs.get("ports")
        if ports is None:  # recorded before `ovs` had them: ovs_config's, when it is there
            config = self.facts.known("ovs_config") or {}
            ports = {p: e.get("interfaces") for p, e in (config.get("ports") or {}).items()}
        return {p: sorted(ports.get(p) or [p]) for p in (ovs.get("bridges") or {}).get(bridge, [])}

    def ovs_bridge(self, name):
        """The OVS bridge `name` is an interface of (a bridge's own: the bridge), or None.
        OVSDB is read here only for a device OVS may have made (an OVS bridge's or
        internal port's, a kernel datapath's port); a NIC that is a port of the
        userspace datapath is found once the `ovs` fact is read (recorded, or asked for)."""
        device = self.devices.get(name)
        maybe = device is not None and (device.kind in OVS_KINDS or self.facts.known("ovs")
                                        or device.link.get("master") == OVS_DATAPATH)  # fmt: skip
        ovs = self._ovs_summary() if maybe else None
        for bridge in sorted((ovs or {}).get("bridges") or {}):
            if bridge == name or any(name in i for i in self.ovs_ports(bridge).values()):
                return bridge
        return None

    def _ovs_made(self, name):
        """An OVS bridge's own interface or internal port (taps in the userspace
        datapath), or that datapath's own device."""
        interfaces = (self._ovs_summary() or {}).get("interfaces") or {}
        bridges = (self._ovs_summary() or {}).get("bridges") or {}
        return (name == OVS_NETDEV or name in bridges
                or (interfaces.get(name) or {}).get("type") == "internal")  # fmt: skip

    def _ovs_internal(self):
        interfaces = (self._ovs_summary() or {}).get("interfaces") or {}
        return {n for n, i in interfaces.items() if i.get("type") == "internal"}

    def tc(self, name):
        """The device's qdiscs, classes, filters and ingress filters (vnet_tc's `tc`
        fact, which a module declares): {"qdiscs": [...], "classes": {...}, ...}."""
        found = self.facts.get("tc") or {}
        return {part: (found.get(part) or {}).get(name) for part in
                ("qdiscs", "classes", "filters", "ingress")}  # fmt: skip
