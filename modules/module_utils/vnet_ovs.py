"""Open vSwitch helpers for host modules: reading ovsdb's tables and batching changes.

Runs on the managed host: Python 3.9+, standard library only."""

from __future__ import annotations

import json

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

# ovs-vsctl takes a batch as one argv of "--"-separated commands: one ovsdb transaction
OVS_VSCTL = ["ovs-vsctl", "--timeout=10"]
# Bridge, Port and Interface tables, one JSON document per line
FACTS_ARGV = OVS_VSCTL + [
    "--format=json", "--data=json",
    "--", "--columns=name,ports,datapath_type", "list", "Bridge",
    "--", "--columns=_uuid,name,interfaces,protected", "list", "Port",
    "--", "--columns=_uuid,name,type,options,external_ids", "list", "Interface",
]  # fmt: skip


def transaction(lines):
    """One ovs-vsctl argv running every line (one command each) in one transaction.
    Lines are vnet_core.line()'s: words separated by single spaces, nothing quoted."""
    argv = list(OVS_VSCTL)
    for line in lines:
        argv += ["--"] + vnet_core.check_line(line).split(" ")
    return argv


def _ovs_value(value):
    """OVSDB's JSON: ["map", [[k, v]..]], ["set", [..]], ["uuid", id] or a scalar."""
    if isinstance(value, list) and len(value) == 2 and value[0] in ("map", "set", "uuid"):
        kind, data = value
        if kind == "map":
            return {k: _ovs_value(v) for k, v in data}
        if kind == "set":
            return [_ovs_value(v) for v in data]
        return data
    return value


def parse_tables(output):
    tables = [json.loads(line) for line in output.splitlines() if line.strip()]
    bridges_t, ports_t, ifaces_t = (
        [dict(zip(t["headings"], map(_ovs_value, row))) for row in t["data"]] for t in tables
    )
    iface_by_uuid = {i["_uuid"]: i for i in ifaces_t}
    port_by_uuid = {p["_uuid"]: p for p in ports_t}

    def as_list(value):
        return value if isinstance(value, list) else [value]

    return {
        "datapath": {b["name"]: b["datapath_type"] or "system" for b in bridges_t},
        "bridges": {
            b["name"]: sorted(port_by_uuid[u]["name"] for u in as_list(b["ports"]))
            for b in bridges_t
        },
        # protected ports never forward to one another: split horizon for tunnel meshes
        "protected": sorted(p["name"] for p in ports_t if p.get("protected") is True),
        "interfaces": {
            i["name"]: {k: i[k] for k in ("type", "options", "external_ids")}
            for i in iface_by_uuid.values()
        },
    }
