"""VXLAN meshes across the fleet: peers computed from the inventory (`expand`), the
reachability check across the overlay (`probe`), members of a snapshot (`snapshot`)."""

from vnetctl.fleet.expanders import Expander
from vnetctl.fleet.mesh.expand import MODULE, expand_meshes, member_hosts
from vnetctl.fleet.mesh.snapshot import snapshot_members

EXPANDERS = [
    Expander(module=MODULE, expand=expand_meshes, reach=member_hosts, snapshot=snapshot_members)
]
