"""Open vSwitch helpers for host modules: reading ovsdb's tables, batching changes into
one ovs-vsctl transaction, and OpenFlow rules in one atomic ovs-ofctl bundle per bridge.

ovs-vsctl lines are vnet_core.line()'s, so they hold no quote. The one ovsdb value that
needs one, a set of "address:port" strings (NetFlow, sFlow and IPFIX `targets`), is
written plainly in the line (`targets=10.0.0.9:4739,10.0.0.8:4739`, what the plan
shows) and quoted here, in the argv, from values the module checked as IP:port.

ovs-ofctl lines are "BRIDGE add|delete|delete_strict FLOW" (FLOW without blanks); each
bridge's lines go to one `ovs-ofctl --bundle add-flows BRIDGE -`: all of them or none.

Runs on the managed host: Python 3.9+, standard library only."""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts

# ovs-vsctl takes a batch as one argv of "--"-separated commands: one ovsdb transaction
OVS_VSCTL = ["ovs-vsctl", "--timeout=10"]
# what the built-in `ovs` fact reads (see summary())
TABLES = {
    "Bridge": ["name", "ports", "datapath_type"],
    "Port": ["_uuid", "name", "interfaces", "protected"],
    "Interface": ["_uuid", "name", "type", "options", "external_ids"],
}


# columns holding a set of "address:port" strings, quoted in the argv (see above)
QUOTED_SETS = ("targets=",)


def transaction(lines):
    """One ovs-vsctl argv running every line (one command each) in one transaction.
    Lines are vnet_core.line()'s: words separated by single spaces, nothing quoted."""
    argv = list(OVS_VSCTL)
    for line in lines:
        argv += ["--"] + [_quoted(w) for w in vnet_core.check_line(line).split(" ")]
    return argv


def _quoted(word):
    for prefix in QUOTED_SETS:
        if word.startswith(prefix):
            values = [v for v in word[len(prefix) :].split(",") if v]
            return prefix + "[" + ",".join(vnet_core.dumps(v) for v in values) + "]"
    return word


def ofctl_batches(lines):
    """[(argv, stdin)]: one atomic `ovs-ofctl --bundle add-flows BRIDGE -` per bridge,
    in the order the bridges first appear."""
    by_bridge = {}
    for line in lines:
        bridge, rest = vnet_core.check_line(line).split(" ", 1)
        by_bridge.setdefault(vnet_core.check_ifname(bridge, "bridge name"), []).append(rest)
    return [
        (["ovs-ofctl", "--bundle", "add-flows", bridge, "-"], "".join(f + "\n" for f in flows))
        for bridge, flows in by_bridge.items()
    ]


# ---- facts -------------------------------------------------------------------------


def ovsdb(tables, parse):
    """A fact source reading OVSDB: `tables` is {table: [columns]}; `parse` gets
    {table: [row as {column: value}]} (with any column another source asked for too) and
    returns the fact. Every OVSDB source of a play is read by one ovs-vsctl, tables and
    columns merged. None where Open vSwitch is not installed or not running."""
    return vnet_facts.grouped(gather, {t: list(c) for t, c in tables.items()}, parse)


ALL = "*"  # a table's every column, those only a newer OVS has included


def gather(sources, runner):
    """{name: fact} for every OVSDB source in `sources`, from one ovs-vsctl. A table
    asked for with ALL is listed whole: a column this OVS lacks is then simply absent
    (naming it would fail the whole ovs-vsctl)."""
    wanted = {}
    for source in sources.values():
        for table, columns in source.request.items():
            wanted.setdefault(table, set()).update(columns)
    argv = OVS_VSCTL + ["--format=json", "--data=json"]
    for table in sorted(wanted):
        columns = [] if ALL in wanted[table] else ["--columns=" + ",".join(sorted(wanted[table]))]
        argv += ["--", *columns, "list", table]
    try:
        output = runner(argv)
    except vnet_core.ModuleError:  # not installed or not running: a fact, not an error
        return dict.fromkeys(sources)
    tables = dict(zip(sorted(wanted), parse_output(output)))
    return {name: source.parse(tables) for name, source in sources.items()}


def parse_output(output):
    """ovs-vsctl --format=json --data=json: one document per `list`, rows as dicts."""
    documents = [vnet_core.loads(line) for line in output.splitlines() if line.strip()]
    return [[dict(zip(d["headings"], map(_ovs_value, row))) for row in d["data"]]
            for d in documents]  # fmt: skip


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


def summary(tables):
    """The built-in `ovs` fact: bridges, their datapaths and ports, each port's
    interfaces, protected ports, and interfaces (type, options, external_ids)."""
    bridges_t, ports_t, ifaces_t = (tables[t] for t in ("Bridge", "Port", "Interface"))
    port_by_uuid = {p["_uuid"]: p for p in ports_t}

    def as_list(value):
        return value if isinstance(value, list) else [value]

    iface_by_uuid = {i["_uuid"]: i["name"] for i in ifaces_t}
    return {
        "datapath": {b["name"]: b["datapath_type"] or "system" for b in bridges_t},
        # each port's interfaces (a bond's members): the host's model stacks them
        "ports": {
            p["name"]: sorted(
                iface_by_uuid[u] for u in as_list(p["interfaces"]) if u in iface_by_uuid
            )
            for p in ports_t
        },
        "bridges": {
            b["name"]: sorted(port_by_uuid[u]["name"] for u in as_list(b["ports"]))
            for b in bridges_t
        },
        # protected ports never forward to one another: split horizon for tunnel meshes
        "protected": sorted(p["name"] for p in ports_t if p.get("protected") is True),
        "interfaces": {
            i["name"]: {k: i[k] for k in ("type", "options", "external_ids")} for i in ifaces_t
        },
    }
