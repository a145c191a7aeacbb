#!/usr/bin/python3
# WANT_JSON
"""IPv4 forwarding (the kernel's `net.ipv4.ip_forward`): whether the host routes IPv4
packets between its interfaces, on or off.

A new tool for a module is the registry's business (vnet_registry): this module writes
`sysctl` steps with `host.sysctl_step`, which `sysctl -p -` applies; check mode checks
them as the real run would. The host's own traffic is not forwarded: the management-path
guard sees no effect on the path. In a network namespace (a lab host) the setting is the
namespace's own.

Persisted as `/etc/sysctl.d/99-vnetctl-sysctl-net.ipv4.ip_forward.conf`, which
systemd-sysctl applies at boot (after the distribution's files and /etc/sysctl.conf).
"""

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_persist  # noqa: F401 -- see persist()
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_persist  # noqa: F401 -- see persist()

RESOURCE = "sysctl"
KEY = "net.ipv4.ip_forward"
ARGUMENT_SPEC = {"enabled": {"type": "bool", "required": True}}


def _flag(output):
    return output.strip() == "1"


FACTS = {"ip_forward": host.command(["sysctl", "-n", KEY], parse=_flag)}


def resource_name(params):
    return KEY


def read(params, facts):
    return {"enabled": facts.get("ip_forward")}


def desired(params, current, facts):
    return host.merge_desired(current, params)


def steps(current, desired, facts):
    return [host.sysctl_step(KEY, 1 if desired["enabled"] else 0)]


def persist(params, desired, facts, units):
    """The setting as systemd-sysctl applies it at boot. vnetctl ships a module's library
    files by what it imports: the import of vnet_persist above is what has the host
    program write this (vnet_persist.after_task)."""
    units.sysctl([(KEY, 1 if desired["enabled"] else 0)])


SNAPSHOT_ORDER = 5  # a setting of the host's own: nothing it needs is made by others


def snapshot(facts):
    return [{"enabled": facts.get("ip_forward")}]


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
