"""Check mode across a play: the devices earlier tasks would make.

A check-mode run changes nothing, so a task that needs a device an earlier task of the
same play makes (a port group on the bridge the play creates, a VLAN on its bond) reads
a host that does not have it: planned alone it fails ("bridge does not exist") or finds
nothing to do, where the real run would change it. The host's play (vnetctl/hostside/
play.py) therefore keeps, through a check-mode play, what each task's steps would make
that the host does not have (`creates`); a later task that names one of those devices
in an argument of type ifname and then fails naming it, or plans nothing, is reported
as a change pending that task: `pending: {after: INDEX, creates: "bridge br-vm"}`, its
resource missing (state absent -> present), never failed and never ok. What it does
then is planned by the next check, once the device exists. A task that plans changes
all the same (it makes the device itself) keeps its own plan.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_registry
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_registry

after = vnet_registry.after


def creates(step):
    """What a step makes: [(what, name)] for `ip link add` (a device of its type) and
    ovs-vsctl's add-br, add-port and add-bond; [] for any other step."""
    tool, words = step[0], step[1].split()
    if tool == "ip" and words[:2] == ["link", "add"] and len(words) > 2:
        name = after(words, "name") or (words[2] if words[2] not in ("link", "dev") else None)
        return [(after(words, "type") or "device", name)] if name else []
    if tool != "ovs-vsctl":
        return []
    words = [w for w in words if not w.startswith("--")]
    if words[:1] == ["add-br"] and len(words) > 1:
        return [("Open vSwitch bridge", words[1])]
    if words[:1] in (["add-port"], ["add-bond"]) and len(words) > 2:
        kind = "port" if words[0] == "add-port" else "bond"
        return [("%s of Open vSwitch bridge %s" % (kind, words[1]), words[2])]
    return []


def device_args(spec, params):
    """Every value of an argument of type ifname in `params` (nested dicts and lists of
    dicts included), as the module's ARGUMENT_SPEC types them."""
    found = []
    for key, rule in (spec or {}).items():
        value = (params or {}).get(key)
        if value is None:
            continue
        kind, elements = rule.get("type", "str"), rule.get("elements")
        values = value if kind == "list" and isinstance(value, list) else [value]
        if kind == "ifname" or elements == "ifname":
            found += [v for v in values if isinstance(v, str)]
        elif rule.get("options"):
            found += [n for v in values if isinstance(v, dict)
                      for n in device_args(rule["options"], v)]  # fmt: skip
    return found


def _names(text, name):
    """Whether `text` names device `name` as a word of its own (not `br-vm` in `br-vm2`;
    no `re`: a host play imports nothing it can do without)."""
    start = text.find(name)
    while start >= 0:
        end = start + len(name)
        if (start == 0 or not _in_name(text[start - 1])) and (
                end == len(text) or not _in_name(text[end]) or text[end] == "."):  # fmt: skip
            return True
        start = text.find(name, start + 1)
    return False


def _in_name(char):
    return char.isalnum() or char in "_.-"


class Upcoming:
    """What the earlier tasks of a check-mode play would make: {name: (index, what)}."""

    def __init__(self):
        self.made = {}

    def record(self, index, result, facts):
        """The devices a check-mode result's commands make that the host lacks."""
        for command in result.get("commands") or []:
            tool, _, line = command.partition(" ")
            for what, name in creates((tool, line)):
                if name not in self.made and facts.link(name) is None:
                    self.made[name] = (index, what)

    def pending(self, module, params, result):
        """`result` as a change pending an earlier task, when the task names a device
        that task makes and failed naming it, or planned nothing; else `result`."""
        if not self.made or result.get("skipped") or params.get("state") == "absent":
            return result
        named = [n for n in device_args(getattr(module, "ARGUMENT_SPEC", None), params)
                 if n in self.made]  # fmt: skip
        msg = str(result.get("msg") or "")
        if result.get("failed"):
            named = [n for n in named if _names(msg, n)]
        elif result.get("changed"):
            return result
        if not named:
            return result
        index, what = self.made[named[0]]
        name = "%s %s" % (what, named[0])
        return dict(result, **{
            "changed": True, "failed": False, "resource": result.get("resource"),
            "msg": "would change, after task #%s creates %s (planned once it exists)" % (
                index, name),
            "pending": {"after": index, "creates": name},
            "changes": [{"field": "state", "before": "absent", "after": "present"}],
            "diff": {"before": {"state": "absent"}, "after": {"state": "present"}},
        })  # fmt: skip
