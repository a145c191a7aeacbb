"""pyinfra's version of playbooks/site.yml: the same `ip` commands, each guarded so that
a converged host runs only the checks (pyinfra has no bridge or MTU operations)."""

from pyinfra.operations import server

server.shell(
    name="VM bridge with its uplink",
    commands=[
        "ip link show br-vm >/dev/null 2>&1 || ip link add br-vm type bridge stp_state 0 "
        "forward_delay 0",
        '[ "$(cat /sys/class/net/eth1/mtu)" = 9000 ] || ip link set dev eth1 mtu 9000',
        '[ "$(cat /sys/class/net/br-vm/mtu)" = 9000 ] || ip link set dev br-vm mtu 9000',
        "[ -e /sys/class/net/br-vm/brif/eth1 ] || ip link set dev eth1 master br-vm",
        "ip link set dev br-vm up",
    ],
)
server.shell(
    name="storage NIC jumbo frames",
    commands=['[ "$(cat /sys/class/net/eth2/mtu)" = 9000 ] || ip link set dev eth2 mtu 9000'],
)
