"""Open vSwitch on lab hosts: each host runs its own ovsdb-server and ovs-vswitchd.

They run in the host's namespaces (network, mount, UTS), so the database in /etc and the
sockets, pidfiles and logs in /run are the host's own (its overlays). The userspace
datapath (`datapath_type=netdev`) works in a network namespace without sharing the
kernel datapath between hosts; tunnels on it need their VTEP on an OVS bridge.
`lab down` stops the daemons with every other process in the host's namespace.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from vnetctl.lab.proc import LabError, run_many
from vnetctl.lab.state import LabHost
from vnetctl.output.words import count

RUN_DIR = "/run/openvswitch"
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-vswitchd")

# Idempotent: a daemon whose pidfile names a live process is left alone.
START_SCRIPT = f"""\
set -e
mkdir -p /etc/openvswitch {RUN_DIR}
alive() {{ [ -f {RUN_DIR}/$1.pid ] && kill -0 "$(cat {RUN_DIR}/$1.pid)" 2>/dev/null; }}
[ -e /etc/openvswitch/conf.db ] || ovsdb-tool create /etc/openvswitch/conf.db {SCHEMA}
if ! alive ovsdb-server; then
    ovsdb-server /etc/openvswitch/conf.db --remote=punix:{RUN_DIR}/db.sock \\
        --pidfile={RUN_DIR}/ovsdb-server.pid --detach --log-file={RUN_DIR}/ovsdb-server.log
    ovs-vsctl --no-wait init
fi
if ! alive ovs-vswitchd; then
    ovs-vswitchd unix:{RUN_DIR}/db.sock --pidfile={RUN_DIR}/ovs-vswitchd.pid --detach \\
        --log-file={RUN_DIR}/ovs-vswitchd.log
fi
ovs-vsctl --timeout=10 show >/dev/null
"""

ALIVE_SCRIPT = f"""\
for daemon in ovsdb-server ovs-vswitchd; do
    [ -f {RUN_DIR}/$daemon.pid ] && kill -0 "$(cat {RUN_DIR}/$daemon.pid)" 2>/dev/null || exit 1
done
"""


def require_ovs() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise LabError(f"{', '.join(missing)} missing: install openvswitch-switch")


def start_ovs(hosts: Sequence[LabHost], in_host) -> None:
    """Start (or keep) both daemons on every host; `in_host(host, argv)` wraps argv to run
    in the host's namespaces."""
    require_ovs()
    results = run_many([(in_host(h, ["sh", "-c", START_SCRIPT]), None) for h in hosts], check=False)
    failed = [(h, r) for h, r in zip(hosts, results, strict=True) if r.returncode != 0]
    if failed:
        host, result = failed[0]
        raise LabError(
            f"Open vSwitch did not start on {host.name} ({count(len(failed), 'host')} failed): "
            f"{result.stderr.strip()[-400:]}"
        )


def ovs_alive(hosts: Sequence[LabHost], in_host) -> list[bool]:
    results = run_many([(in_host(h, ["sh", "-c", ALIVE_SCRIPT]), None) for h in hosts], check=False)
    return [r.returncode == 0 for r in results]
