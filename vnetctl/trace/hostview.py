"""One host's state as the trace reads it: the host library's own model (vnet_hostnet's
Network, built from the facts `vnetctl facts` reads) and its readers of VLAN membership
(vnet_vlans), port security (vnet_nft_portsec) and tc, so the trace parses nothing the
planners do not parse the same way."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any


def lib(name: str) -> Any:
    """A host library module the catalog installed (vnetctl.hostlib.load)."""
    return sys.modules[name]


@dataclass
class HostView:
    name: str
    data: dict[str, Any]
    facts: Any  # the host library's Facts over `data`
    lookups: dict[str, Any] = field(default_factory=dict)  # path_trace answers, by key

    @property
    def net(self) -> Any:
        return self.facts.net

    def link(self, name: str) -> dict[str, Any] | None:
        return self.net.links.get(name)

    def mtu(self, name: str) -> int | None:
        link = self.link(name)
        return link.get("mtu") if link else None

    def egress_mtus(self, device: str) -> dict[str, int]:
        """{device: MTU} of what an encapsulated frame routed by `device` leaves by. An OVS
        bridge's own interface: the bridge's ports' interfaces (OVS forwards the frame to
        them); the bridge's own MTU counts in the kernel datapath only (the userspace
        datapath takes the host's frame from that tap without it: tested in the lab)."""
        bridge = self.net.ovs_bridge(device)
        if bridge != device:
            mtu = self.mtu(device)
            return {} if mtu is None else {device: mtu}
        ovs = self.data.get("ovs") or {}
        interfaces = ovs.get("interfaces") or {}
        internal = {n for n, i in interfaces.items() if i.get("type") == "internal"} | {bridge}
        names = [i for ifs in self.net.ovs_ports(bridge).values() for i in ifs if i not in internal]
        if (ovs.get("datapath") or {}).get(bridge, "system") == "system":
            names.append(bridge)
        return {n: self.mtu(n) for n in sorted(set(names)) if self.mtu(n) is not None}

    def is_up(self, name: str) -> bool:
        link = self.link(name) or {}
        return "UP" in (link.get("flags") or []) and link.get("operstate") != "DOWN"

    def bridge_of(self, port: str) -> tuple[str | None, str | None]:
        """(bridge, "linux" | "ovs") a port belongs to, or (None, None)."""
        device = self.net.device(port)
        if device is not None and device.master and self.net.kind(device.master) == "bridge":
            return device.master, "linux"
        ovs = self.net.ovs_bridge(port)
        if ovs is not None and ovs != port:
            return ovs, "ovs"
        return None, None

    def veth_peer(self, name: str) -> str | None:
        """The other end of a veth when it is in this namespace (the lab's VM-like
        ports: the guest end sends, the other end is the bridge's port)."""
        link = self.link(name) or {}
        if self.net.kind(name) != "veth" or "link_netnsid" in link:
            return None
        peer = link.get("link")
        return peer if peer in self.net.links else None

    # ---- VLANs ---------------------------------------------------------------------

    def vlan_filtering(self, bridge: str) -> bool:
        device = self.net.device(bridge)
        return bool(device is not None and device.info.get("vlan_filtering"))

    def membership(self, port: str) -> dict[str, Any] | None:
        """{"vlans", "pvid", "untagged"} of a Linux bridge port (vnet_vlans' reading)."""
        vlans = lib("vnet_vlans")
        found = vlans.memberships(self.facts).get(port)
        if found is None:
            return None
        return {"vlans": sorted(vlans.vids(found["vlans"])), "pvid": found.get("pvid"),
                "untagged": sorted(vlans.vids(found["untagged"]))}  # fmt: skip

    def ovs_port(self, port: str) -> dict[str, Any]:
        """The OVSDB Port row (tag, trunks, vlan_mode) as ovs_config reads it."""
        config = self.data.get("ovs_config") or {}
        return (config.get("ports") or {}).get(port) or {}

    # ---- port security -------------------------------------------------------------

    def guard(self, port: str) -> dict[str, Any] | None:
        """The port's guard in vnetctl's nftables table (vnet_nft_portsec.guard_of), or
        None where the table is absent or does not guard it."""
        portsec = lib("vnet_nft_portsec")
        table = portsec.table(self.data.get("nft_bridge"))
        if not table or not table.get("elements"):
            return None
        found = portsec.guard_of(table["elements"], port)
        if found["macs"] is None and not found["inbound"]:
            return None
        return dict(found, whole=portsec.whole(table["rules"]))

    # ---- tc --------------------------------------------------------------------------

    def tc(self, device: str) -> dict[str, Any]:
        return self.net.tc(device)

    # ---- VXLAN ---------------------------------------------------------------------

    def vxlan_ports(self, bridge: str) -> list[str]:
        return [p for p in self.net.ports(bridge) if self.net.kind(p) == "vxlan"]

    def vteps(self, device: str) -> list[str]:
        """The remote VTEPs the device replicates to (its all-zero fdb entries)."""
        return sorted({e["dst"] for e in self.data.get("fdb") or []
                       if e.get("ifname") == device and e.get("dst")})  # fmt: skip

    def vtep_addresses(self) -> set[str]:
        """Every address this host holds: one of them is its VTEP."""
        return {a["local"] for d in self.net.addressed() for a in self.net.entries(d)}
