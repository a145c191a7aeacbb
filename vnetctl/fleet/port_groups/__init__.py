"""Port groups across the fleet, Linux (`port_group`) and Open vSwitch
(`ovs_port_group`): one policy per group on every host, checked before any change (see
`policy`)."""

from vnetctl.fleet.expanders import Expander
from vnetctl.fleet.port_groups.policy import Policy, shown

LINUX_MODULE = "port_group"
OVS_MODULE = "ovs_port_group"


def _vlan_set(catalog, field, value):
    """`tagged` in the module's canonical form ("200-201" for "200,201")."""
    if field != "tagged" or value is None:
        return shown(catalog, field, value)
    vlans = catalog.load(LINUX_MODULE).vlans
    return vlans.text(vlans.vids(value)) or "none"


LINUX = Policy(LINUX_MODULE, identity=("name",), fields=("vlan", "tagged"), canonical=_vlan_set)
OVS = Policy(OVS_MODULE, identity=("name", "bridge"),
             fields=("vlan", "trunks", "vlan_mode", "mtu"))  # fmt: skip

EXPANDERS = [Expander(module=p.module, expand=p.check) for p in (LINUX, OVS)]
