"""The declared policy a security_groups task applied, kept on the host: what its
nftables table or flows alone cannot say (which selector chose each VM), so that
`vnetctl snapshot` can write the groups back as a task that compiles to the same policy.

    /etc/vnetctl/microseg/BRIDGE/NAME.json   {name, bridge, groups, vms, ports, templates}:
                                            the groups as declared, this host's VMs as
                                            declared (selectors' inputs), and the
                                            resolved policy the host compiled

A directory per bridge (both names may hold dots). Written whole through the `file`
writer (vnet_registry.document_step: whole or not at all, also on a full disk), after
the task's other steps; removed by `state: absent`. The task's state has it as
`declared`: a file changed or removed by hand is drift, and a run writes it again.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_registry
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_registry

DIRECTORY = "/etc/vnetctl/microseg"
KEYS = ("name", "bridge", "groups", "vms", "ports", "templates")
READ_MAX = 16 << 20  # as vnet_vm_attach.DECLARATION_MAX: 100 groups x 20 rules fit

_PROBE = """
import glob, json
def text(path):
    try:
        with open(path, 'rb') as f: return f.read(%d).decode('utf-8', 'replace')
    except OSError: return None
print(json.dumps({p: text(p) for p in glob.glob('%s/*/*.json')}))
""" % (READ_MAX, DIRECTORY)

SOURCE = vnet_facts.command(["python3", "-I", "-S", "-c", _PROBE], optional=True)


def path_of(bridge, name):
    return "%s/%s/%s.json" % (DIRECTORY, bridge, name)


def _loaded(text):
    try:
        found = vnet_core.loads(text or "")
    except ValueError:
        return {"unreadable": (text or "")[:200]}
    return found if isinstance(found, dict) else {"unreadable": str(found)[:200]}


def read(facts, bridge, name):
    """The document of the task `name` on `bridge` as its file holds it: None when there
    is none, MISSING from facts recorded before this source existed."""
    try:
        found = facts.get("microseg_declared") or {}
    except vnet_facts.Missing:
        return MISSING
    text = found.get(path_of(bridge, name))
    return None if text is None else view(_loaded(text))


MISSING = object()


def documents(facts):
    """[document] of every task on this host (an unreadable file left out: it is the
    drift of its own task)."""
    out = []
    for _, text in sorted((facts.get("microseg_declared") or {}).items()):
        found = _loaded(text)
        if "unreadable" not in found and found.get("name") and found.get("bridge"):
            out.append(found)
    return out


def desired(params, current):
    """The document after the task: None for `state: absent`; `current` kept where the
    controller sent no declaration (a module run by hand, ansible-playbook)."""
    declaration = params.get("declaration")
    if params["state"] != "present":
        return None
    if declaration is None:
        return current
    out = {"name": params["name"], "bridge": params["bridge"],
           "groups": declaration.get("groups") or [], "vms": declaration.get("vms") or [],
           "ports": params.get("ports") or [],
           "templates": params.get("templates") or []}  # fmt: skip
    return view(vnet_core.loads(vnet_core.dumps(out)))  # the form read() gives back


def view(doc):
    """The document as the task's state: its lists keyed by name, so that drift names
    what differs (`declared.vms.db-1.member_of`, `declared.ports.db-1.ingress`, a
    group's `declared.groups.db`), with the order kept; document() gives it back."""
    if "unreadable" in doc:
        return doc
    names = {str(vm.get("mac", "")).lower(): str(vm.get("name")) for vm in doc.get("vms") or []}
    ports = [(names.get(str(p.get("mac", "")).lower()) or str(p.get("mac")), p)
             for p in doc.get("ports") or []]  # fmt: skip
    member_of = {key: port.get("groups") or [] for key, port in ports}
    return {
        "name": doc.get("name"), "bridge": doc.get("bridge"),
        "groups": {str(g.get("name")): g for g in doc.get("groups") or []},
        "group_order": [str(g.get("name")) for g in doc.get("groups") or []],
        "vms": {str(vm.get("name")): dict(vm, member_of=member_of.get(str(vm.get("name")), []))
                for vm in doc.get("vms") or []},
        "vm_order": [str(vm.get("name")) for vm in doc.get("vms") or []],
        "ports": dict(ports), "port_order": [key for key, _ in ports],
        "templates": doc.get("templates") or [],
    }  # fmt: skip


def document(state):
    """The file's document of a view()."""
    vms = [{k: v for k, v in state["vms"][n].items() if k != "member_of"}
           for n in state["vm_order"]]  # fmt: skip
    return {"name": state["name"], "bridge": state["bridge"],
            "groups": [state["groups"][n] for n in state["group_order"]], "vms": vms,
            "ports": [state["ports"][k] for k in state["port_order"]],
            "templates": state["templates"]}  # fmt: skip


def steps(params, current, wanted):
    """The file step from the state `current` to `wanted`."""
    if current == wanted:
        return []
    text = None if wanted is None else vnet_core.dumps(document(wanted)) + "\n"
    return [vnet_registry.document_step(path_of(params["bridge"], params["name"]), text)]
