"""The test lab: real OpenSSH hosts on one machine, one network namespace each.

What a lab host is (its namespaces, its sshd, its own /etc, /var/lib and /run) is in the
README ("The lab") and `vnetctl lab --help`; naming and addressing in `vnetctl.lab.state`,
the host's sshd and file views in `vnetctl.lab.sshd`.
"""

from vnetctl.lab.lab import (
    allocate_lab,
    host_exec,
    lab_down,
    lab_status,
    lab_up,
    reset_hosts,
    restart_libvirt,
    start_sshd,
    stop_sshd,
)
from vnetctl.lab.proc import LabError
from vnetctl.lab.state import (
    LAB_ROOT,
    HostStatus,
    LabHost,
    LabState,
    LabStatus,
    load_state,
)

__all__ = [
    "LAB_ROOT",
    "HostStatus",
    "LabError",
    "LabHost",
    "LabState",
    "LabStatus",
    "allocate_lab",
    "host_exec",
    "lab_down",
    "lab_status",
    "lab_up",
    "load_state",
    "reset_hosts",
    "restart_libvirt",
    "start_sshd",
    "stop_sshd",
]
