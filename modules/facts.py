#!/usr/bin/python3
# WANT_JSON
"""The host's network facts: links (`ip -j -d link`) and addresses (`ip -j addr`)."""

from __future__ import annotations

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host

ARGUMENT_SPEC = {}


def run(params, check, facts):
    data = facts.as_dict()
    return {
        "changed": False,
        "failed": False,
        "msg": "ok",
        "facts": data,
        "ansible_facts": {"vnet": data},
    }


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
