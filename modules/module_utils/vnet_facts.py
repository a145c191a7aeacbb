"""Facts: what modules read of a host, from fact sources declared by name.

A source is one of

    command(argv, parse)     one process for the whole host. Prefer it where the tool
                             has one: `tc -j -s qdisc show` covers every device at once.
    per_device(argv, parse)  one process per device asked for; "{dev}" in argv is the
                             device (for what a tool only shows per device).
    a grouped source         gathered with every other source of its group in one
                             process, their requests merged: vnet_ovs.ovsdb(tables,
                             parse) is one, all OVSDB tables and columns in one ovs-vsctl.

`parse` is a pure function of the command's output (text; for OVSDB, its tables) whose
result is the value recorded under the source's name (parse_json by default).
`optional=True`: a command that fails (tool missing, daemon down) gives None, a fact.

The host library declares the built-in sources (vnet_host.Facts.SOURCES: links, addrs,
fdb, ovs); a module declares its own in a module-level `FACTS = {name: source}`. A
source is gathered the first time a module asks for it (`facts.get(name)`, or
`facts.get(name, dev)` for a per-device one), once per play and host, and again only
after `refresh()` (the engine refreshes after every change). `Facts(data)` holds
recorded values under the same names (a per-device source as {dev: value}): planning is
tested with no host.

Runs on the managed host: Python 3.9+, standard library only.
"""

import sys

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

ModuleError = vnet_core.ModuleError


class Missing(ModuleError):
    """Recorded facts without a source a module reads: recorded before it was declared."""


def parse_json(output):
    """`ip -j`/`bridge -j`/`tc -j` output; nothing at all is an empty list."""
    return vnet_core.loads(output) if output.strip() else []


class Source:
    """How one fact is gathered; built by command(), per_device() or grouped()."""

    def __init__(self, argv=None, parse=parse_json, per_device=False, group=None,
                 request=None, optional=False):  # fmt: skip
        self.argv, self.parse, self.per_device = argv, parse, per_device
        self.group, self.request, self.optional = group, request, optional

    def same_as(self, other):
        mine = (self.argv, self.per_device, self.group, self.request, self.parse)
        return mine == (other.argv, other.per_device, other.group, other.request, other.parse)


def command(argv, parse=parse_json, optional=False):
    return Source(list(argv), parse, optional=optional)


def per_device(argv, parse=parse_json, optional=False):
    if not any("{dev}" in token for token in argv):
        raise ValueError("per_device(%r): no {dev} in the command" % (argv,))
    return Source(list(argv), parse, per_device=True, optional=optional)


def grouped(gather, request, parse, optional=True):
    """A source gathered by `gather(sources, runner) -> {name: value}` together with
    every other pending source of the same `gather`, each with its `request`."""
    return Source(None, parse, group=gather, request=request, optional=optional)


def declared_by(modules):
    """Every `FACTS` of `modules`; None: the modules loaded in this process (vnetctl's
    host process loads the play's modules before it gathers, Ansible the one it runs)."""
    if modules is None:
        modules = [
            m for m in list(sys.modules.values())
            if isinstance(getattr(m, "FACTS", None), dict) and hasattr(m, "ARGUMENT_SPEC")
        ]  # fmt: skip
    return [m.FACTS for m in modules if getattr(m, "FACTS", None)]


class Facts:
    """The host's state, by source name, each gathered when first asked for and cached
    until refresh(); or recorded values (`Facts(data)`), for planning with no host."""

    SOURCES = {}  # the built-in sources: set by vnet_host, the way a module sets FACTS
    MODEL = None  # the network model built from them (vnet_hostnet.Network): vnet_host's

    def __init__(self, data=None, runner=None, modules=()):
        self._data = dict(data or {})
        self._runner, self._net = runner, None
        self._sources = dict(self.SOURCES)
        for declared in declared_by(modules):
            self.declare(declared)

    @classmethod
    def gather(cls, runner=None, modules=None):
        """Live facts, read with `runner` (vnet_core.run), from the built-in sources and
        those `modules` declare (default: every module loaded in this process)."""
        return cls(runner=runner or vnet_core.run, modules=modules)

    def declare(self, sources):
        """Add sources ({name: source}); a name declared twice must mean one thing."""
        for name, source in sources.items():
            known = self._sources.get(name)
            if known is not None and not known.same_as(source):
                raise ModuleError("fact source %r is declared twice, differently" % name)
            self._sources[name] = source

    def get(self, name, dev=None):
        """The value of source `name` (of `dev`, for a per-device source)."""
        if dev is None:
            if name not in self._data:
                self._gather(name)
            return self._data[name]
        if dev not in (self._data.get(name) or {}):
            self._gather(name, dev)
        return self._data[name][dev]

    def known(self, name):
        """The value of source `name` if it is gathered or recorded, else None (never
        gathered here)."""
        return self._data.get(name)

    def _gather(self, name, dev=None):
        where = " for %s" % dev if dev is not None else ""
        if self._runner is None:
            raise Missing("recorded facts have no %r%s" % (name, where))
        source = self._sources.get(name)
        if source is None:
            raise ModuleError("no fact source %r is declared (a module declares its own "
                              "in FACTS)" % name)  # fmt: skip
        if source.per_device != (dev is not None):
            what = "per device" if source.per_device else "for the whole host"
            raise ModuleError("fact source %r is %s: asked%s" % (name, what, where or " for all"))
        if source.group is not None:
            pending = {
                n: s for n, s in self._sources.items() if s.group is source.group
                and n not in self._data
            }  # fmt: skip
            self._data.update(source.group(pending, self._runner))
        elif dev is not None:
            argv = [t.replace("{dev}", vnet_core.check_ifname(dev)) for t in source.argv]
            self._data.setdefault(name, {})[dev] = self._run(source, argv)
        else:
            self._data[name] = self._run(source, source.argv)

    def _run(self, source, argv):
        try:
            output = self._runner(argv)
        except ModuleError:
            if source.optional:
                return None
            raise
        return source.parse(output)

    def refresh(self):
        """Forget what was gathered (not recorded facts): the host has changed."""
        if self._runner is not None:
            self._data.clear()
            self._net = None

    def as_dict(self):
        """Every declared source (per-device ones for every link): `vnetctl facts`."""
        out = {}
        for name, source in self._sources.items():
            if source.per_device:
                out[name] = {dev: self.get(name, dev) for dev in sorted(self.links)}
            else:
                out[name] = self.get(name)
        return out

    # ---- the built-in sources, as modules read them ---------------------------------

    @property
    def net(self):
        """The host's network model (vnet_hostnet), built once until the next refresh."""
        if self._net is None:
            self._net = self.MODEL(self)
        return self._net

    @property
    def links(self):
        """{name: the device's `ip -j -d link` entry}."""
        return self.net.links

    @property
    def addrs(self):
        return self.get("addrs")

    @property
    def ovs(self):
        """{"bridges": {name: [port names]}, "ports": {port: [interfaces]}, "interfaces":
        {name: {type, options, external_ids}}, ...}, or None without a running OVS."""
        return self.get("ovs")

    @property
    def fdb(self):
        """Forwarding entries that point at a remote VTEP (learned MACs are left out)."""
        return [entry for entry in self.get("fdb") if "dst" in entry]

    def link(self, name):
        device = self.net.device(name)
        return device.link if device is not None else None

    def ports_of(self, master):
        return self.net.ports(master)

    def kind(self, name):
        return self.net.kind(name)

    def admin_up(self, name):
        device = self.net.device(name)
        return device is not None and device.up
