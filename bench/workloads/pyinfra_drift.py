"""pyinfra's drift check of playbooks/site.yml: the guards of pyinfra_site.py alone, each
failing when the host differs (pyinfra has no check mode for shell operations)."""

from pyinfra.operations import server

server.shell(
    name="VM bridge with its uplink",
    commands=[
        "ip link show br-vm >/dev/null 2>&1",
        '[ "$(cat /sys/class/net/eth1/mtu)" = 9000 ]',
        '[ "$(cat /sys/class/net/br-vm/mtu)" = 9000 ]',
        "[ -e /sys/class/net/br-vm/brif/eth1 ]",
        'ip -o link show dev br-vm | grep -q "[<,]UP[,>]"',  # set up, as the deploy does
    ],
)
server.shell(
    name="storage NIC jumbo frames",
    commands=['[ "$(cat /sys/class/net/eth2/mtu)" = 9000 ]'],
)
