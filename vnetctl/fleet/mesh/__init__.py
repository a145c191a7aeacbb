"""VXLAN meshes across the fleet: peers computed from the inventory (`expand`), the
reachability check across the overlay (`probe`) and its health gate (`gate`), members of
a snapshot (`snapshot`)."""

from vnetctl.fleet.expanders import Expander
from vnetctl.fleet.gates import HealthGate
from vnetctl.fleet.mesh.expand import MODULE, expand_meshes, member_hosts
from vnetctl.fleet.mesh.gate import check_pairs
from vnetctl.fleet.mesh.snapshot import snapshot_members

EXPANDERS = [
    Expander(module=MODULE, expand=expand_meshes, reach=member_hosts, snapshot=snapshot_members)
]
GATES = [HealthGate("mesh_check", check_pairs, module=MODULE)]
