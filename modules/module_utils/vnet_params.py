"""Module arguments: the one rulebook. The host applies it to whatever reached a module
(vnetctl's runner, ansible-playbook, a direct call); vnetctl's controller applies the same
functions before any host is touched, and only adds file:line and "did you mean".

A spec maps each argument name to a rule, with only these keys:

    type        str (the default, as in Ansible), int, float, bool, list, dict, raw, a
                name type of vnet_core: ifname (an interface name), meshname, objname
                (a port group's or an OVS mirror's name), or a value type of vnet_fib:
                ipaddr (a next hop), ipdest (a route's destination), rtable (a routing
                table's id or name)
    required    true: must be given, and not null
    default     the value when the argument is not given (null means not given)
    choices     the values allowed (for a list: for each item)
    range       [low, high], inclusive, for an int or float (for a list: each item)
    elements    the type of a list's items
    options     a spec for the keys of a dict, or of each dict of a list of dicts
    controller  true: read by vnetctl on the controller (e.g. to compute peers), which
                strips it before the task goes to a host; the host module ignores it

`aliases` are refused: ansible-playbook does not run this rulebook, so an alias would
work under vnetctl and break under Ansible. Conversions are Ansible's: "9000", " 9000 "
and 9000.0 are the int 9000 (9000.5 is an error); yes/no, on/off, true/false, y/n, t/f,
1/0 (any case) are booleans; an int or float is its text where a str is expected; "a,b"
is ["a", "b"] and 5 is [5] where a list is; a JSON object text is a dict. A boolean is
never taken for a number or a string.

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_fib
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_fib

ModuleError = vnet_core.ModuleError

# text types with a rule of their own: {type: (what it is, problem(value) -> why not)}
CHECKED_TYPES = dict(vnet_core.NAME_TYPES, **vnet_fib.VALUE_TYPES)
TYPES = ("str", "int", "float", "bool", "list", "dict", "raw") + tuple(CHECKED_TYPES)
RULE_KEYS = ("type", "required", "default", "choices", "range", "elements", "options")
RULE_KEYS += ("controller",)
TRUE_WORDS = frozenset(("yes", "on", "true", "y", "t", "1"))
FALSE_WORDS = frozenset(("no", "off", "false", "n", "f", "0"))


class ArgumentError(ModuleError):
    """An argument the rulebook refuses. `path`: the argument's name, then item indexes
    (from 0) and keys inside it; `problem`: "unknown" (`words`: the names not in the
    spec, `known`: those that are), "missing" (required, not given) or "value" (`text`
    says why; `word` and `known` are set when a close choice could be suggested)."""

    def __init__(self, path, problem, text="", words=(), known=()):
        self.path, self.problem, self.text = tuple(path), problem, text
        self.words, self.known = list(words), list(known)
        self.word = self.words[0] if self.words else None
        super().__init__(self._message())

    def _message(self):
        if self.problem == "unknown":
            names = sorted(dotted(self.path + (w,)) for w in self.words)
            return "unknown argument(s): %s" % ", ".join(names)
        if self.problem == "missing":
            return "missing required argument: %s" % dotted(self.path)
        return "argument %s: %s" % (dotted(self.path), self.text)


def dotted(path):
    """("segments", 0, "bridge") -> "segments[0].bridge"."""
    text = ""
    for part in path:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def type_name(value):
    """What a YAML user calls the type of a value."""
    if isinstance(value, bool):
        return "boolean"
    for kind, name in ((dict, "mapping"), (list, "list"), (str, "string"), (int, "integer")):
        if isinstance(value, kind):
            return name
    if isinstance(value, float):
        return "number"
    return "null" if value is None else type(value).__name__


def parse_bool(value):
    """Ansible's booleans, or None."""
    if isinstance(value, (int, float)) and value in (0, 1):  # True and False too
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
    return None


def check_spec(spec, where="argument spec"):
    """A module's spec uses only what this rulebook knows; ValueError otherwise (a bug
    in the module, not in its input)."""
    for name, rule in spec.items():
        at = "%s: argument %r" % (where, name)
        if "aliases" in rule:
            raise ValueError(
                "%s has aliases, which vnetctl does not support: they would work under "
                "vnetctl and break under ansible-playbook" % at
            )
        unknown = sorted(set(rule) - set(RULE_KEYS))
        if unknown:
            raise ValueError("%s: unknown rule key(s) %s" % (at, ", ".join(unknown)))
        for key in ("type", "elements"):
            if rule.get(key, "str") not in TYPES:
                raise ValueError(
                    "%s: unknown type %r (known: %s)" % (at, rule[key], ", ".join(TYPES))
                )
        if rule.get("options") is not None:
            check_spec(rule["options"], at)


def _expected(what, value):
    return "expected %s, got %r (%s)" % (what, value, type_name(value))


def _scalar(kind, value, path):
    """`value` as a scalar `kind`; ArgumentError at `path` otherwise."""
    if kind in ("int", "float"):
        return _number(kind, value, path)
    if kind == "bool":
        parsed = parse_bool(value)
        if parsed is None:
            raise ArgumentError(path, "value", _expected("true or false (yes/no)", value))
        return parsed
    # str and the name types
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ArgumentError(path, "value", _expected("a string", value))
    if kind in CHECKED_TYPES:
        problem = vnet_core.name_problem(kind, value, CHECKED_TYPES)
        if problem is not None:
            raise ArgumentError(path, "value", problem)
    return value


def _number(kind, value, path):
    number = None
    if not isinstance(value, bool):
        if kind == "float" and isinstance(value, (int, float)):
            number = float(value)
        elif kind == "int" and isinstance(value, int):
            number = value
        elif kind == "int" and isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            try:
                number = (int if kind == "int" else float)(value.strip())
            except ValueError:
                number = None
    # nan and inf are floats, but no setting of a network device is either
    if number is not None and number - number == 0:
        return number
    what = "an integer" if kind == "int" else "a finite number"
    raise ArgumentError(path, "value", _expected(what, value))


def convert(rule, value, path=(), fill=False):
    """`value` checked and converted by `rule`; ArgumentError naming `path` otherwise.
    `fill`: dicts with `options` get every key of their spec (None when unset)."""
    kind = rule.get("type", "str")
    if kind == "list":
        return _list(rule, value, path, fill)
    if kind == "dict":
        value = _dict(rule, value, path, fill)
    elif kind != "raw":
        value = _scalar(kind, value, path)
    _check_allowed(rule, value, path)
    return value


def _list(rule, value, path, fill):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        raise ArgumentError(path, "value", _expected("a list", value))
    item_rule = {k: rule[k] for k in ("options", "choices", "range") if k in rule}
    item_rule["type"] = rule.get("elements") or "raw"
    return [convert(item_rule, item, path + (i,), fill) for i, item in enumerate(value)]


def _dict(rule, value, path, fill):
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = vnet_core.loads(value)
        except ValueError:
            pass
    if not isinstance(value, dict):
        raise ArgumentError(path, "value", _expected("a mapping", value))
    if rule.get("options") is None:
        return dict(value)
    return check_args(rule["options"], value, path, fill)


def _check_allowed(rule, value, path):
    choices, bounds = rule.get("choices"), rule.get("range")
    if choices is not None and value not in choices:
        listed = ", ".join(str(c) for c in choices)
        text = "%r is not one of: %s" % (value, listed)
        raise ArgumentError(path, "value", text, [str(value)], [str(c) for c in choices])
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ArgumentError(path, "value", "%r is not within %s..%s" % (value, *bounds))


def check_names(spec, args, path=()):
    """Unknown names (all of them, in the order given), then required arguments that are
    not given or null: ArgumentError."""
    unknown = [str(k) for k in args if k not in spec]
    if unknown:
        raise ArgumentError(path, "unknown", words=unknown, known=sorted(spec))
    for name, rule in spec.items():
        if rule.get("required") and args.get(name) is None:
            raise ArgumentError(path + (name,), "missing")


def check_args(spec, args, path=(), fill=False):
    """Arguments checked and converted, in the order given, then defaults. Null means
    not given. Unset arguments are left out, or None with `fill` (the host's form)."""
    if not path:
        check_spec(spec)
    check_names(spec, args, path)
    out = {}
    for name, value in args.items():
        if value is not None:
            out[name] = convert(spec[name], value, path + (name,), fill)
    for name, rule in spec.items():
        if name not in out and (fill or rule.get("default") is not None):
            out[name] = vnet_core.loads(vnet_core.dumps(rule.get("default")))  # a copy
    return out


class Checked(dict):
    """A task's arguments in the host's form (normalize_params): the engine does not
    check them again (vnetctl's host program checks each task's once, before the play's
    preflight, its journal and the task itself read them)."""


def normalize_params(spec, params):
    """The host's form of a task's arguments: every argument of the spec is a key (None
    when unset), values converted; ArgumentError (a ModuleError) otherwise."""
    return Checked(check_args(spec, params, fill=True))
