"""Argument specs for loader tests: shaped like the real modules' (no module files)."""

BRIDGE_SPEC = {
    "name": {"type": "str", "required": True},
    "mtu": {"type": "int"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "ports": {"type": "list", "elements": "str"},
    "stp": {"type": "bool"},
    "forward_delay": {"type": "float"},
}

CATALOG = {
    "linux_bridge": BRIDGE_SPEC,
    "link": {
        "name": {"type": "str", "required": True},
        "mtu": {"type": "int"},
        "admin_state": {"type": "str", "choices": ["up", "down"]},
    },
    "facts": {},
}
