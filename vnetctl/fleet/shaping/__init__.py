"""Traffic shaping on the controller: its checks before any host is touched
(`preflight`) and live shaping written back as tasks (`snapshot`).

Preflight (exit 1, with file:line): two policies for one device of a host, then every
`traffic_shaping` task planned on its host's gathered facts as the host will plan it
(the host library's plan()): an unknown device, a speed it cannot have, reservations
above 75 % of the link, a reservation above its limit, shares out of range, a match
that can never hit. A device that an earlier task of the run names (a bridge, a VXLAN device it may
make) is left to the host, which checks it again before any change."""

from vnetctl.fleet.expanders import Expander
from vnetctl.fleet.shaping.preflight import MODULE, preflight
from vnetctl.fleet.shaping.snapshot import snapshot_shaping

EXPANDERS = [Expander(module=MODULE, expand=preflight, snapshot=snapshot_shaping)]
