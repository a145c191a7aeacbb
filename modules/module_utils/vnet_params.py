"""Module arguments on the host: types, defaults, choices and name rules, applied to
whatever reached the module (vnetctl's runner, ansible-playbook, a direct call).

A spec maps each argument to `{"type", "required", "default", "choices", "elements",
"options"}`; types are str, int, float, bool, list, dict, raw and the name types of
vnet_core (`ifname`, `meshname`). `options` describes the keys of a dict argument, or
of each dict of a list of dicts (`elements: dict`): unknown keys are refused there too.

Runs on the managed host: Python 3.9+, standard library only.
"""

from __future__ import annotations

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

ModuleError = vnet_core.ModuleError

_BOOL_WORDS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}


def _coerce(name, kind, value):
    try:
        if kind == "int" and not isinstance(value, bool):
            return int(value)
        if kind == "float" and not isinstance(value, bool):
            return float(value)
        if kind == "bool":
            return value if isinstance(value, bool) else _BOOL_WORDS[str(value).lower()]
        if kind == "list" and isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if kind == "str":
            return str(value)
    except (ValueError, KeyError, TypeError):
        raise ModuleError("argument %s: expected %s, got %r" % (name, kind, value)) from None
    if kind in vnet_core.NAME_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        problem = vnet_core.name_problem(kind, value)
        if problem is not None:
            raise ModuleError("argument %s: %s" % (name, problem))
    return value


def _value(name, rule, value):
    kind = rule.get("type", "raw")
    value = _coerce(name, kind, value)
    if kind == "list":
        if not isinstance(value, list):
            raise ModuleError("argument %s: expected a list, got %r" % (name, value))
        elements = rule.get("elements")
        item_rule = {"type": elements, "options": rule.get("options")} if elements else {}
        value = [
            _value("%s[%d]" % (name, i), item_rule, item) if item_rule else item
            for i, item in enumerate(value)
        ]
    elif kind == "dict" and rule.get("options") is not None:
        if not isinstance(value, dict):
            raise ModuleError("argument %s: expected a mapping, got %r" % (name, value))
        value = _normalize(rule["options"], value, name + ".")
    if rule.get("choices") and value not in rule["choices"]:
        raise ModuleError("argument %s must be one of %s" % (name, rule["choices"]))
    return value


def _normalize(spec, params, prefix=""):
    unknown = sorted(str(k) for k in params if k not in spec)
    if unknown:
        raise ModuleError("unknown argument(s): %s" % ", ".join(prefix + k for k in unknown))
    out = {}
    for name, rule in spec.items():
        value = params.get(name, rule.get("default"))
        if value is None:
            if rule.get("required"):
                raise ModuleError("missing required argument: %s%s" % (prefix, name))
            out[name] = None
            continue
        out[name] = _value(prefix + name, rule, value)
    return out


def normalize_params(spec, params):
    """Defaults, types and name rules, for arguments from anywhere (vnetctl's validator
    has checked them on the controller already; a direct call or Ansible has not)."""
    return _normalize(spec, params)
