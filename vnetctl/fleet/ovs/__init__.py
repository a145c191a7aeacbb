"""Open vSwitch across the fleet: port groups declared alike on every host (`consistency`)."""

from vnetctl.fleet.expanders import Expander
from vnetctl.fleet.ovs.consistency import MODULE, check_port_groups

EXPANDERS = [Expander(module=MODULE, expand=check_port_groups)]
