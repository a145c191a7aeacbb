"""pyinfra's version of the 10-task play: ten read-only operations per host, each
reading the interface the vnetctl/Ansible task reads."""

from pyinfra.operations import server

for name, device in [
    ("eth0 state", "eth0"), ("eth1 state", "eth1"), ("eth2 state", "eth2"),
    ("eth0 mtu", "eth0"), ("lo state", "lo"), ("eth0 again", "eth0"),
    ("eth1 again", "eth1"), ("eth2 again", "eth2"), ("lo again", "lo"),
]:  # fmt: skip
    server.shell(name=name, commands=[f"ip -j -d link show dev {device} >/dev/null"])
server.shell(name="facts", commands=["ip -j -d link show >/dev/null && ip -j addr >/dev/null"])
