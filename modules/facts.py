#!/usr/bin/python3
# WANT_JSON
"""The host's facts: links (`ip -j -d link`), addresses (`ip -j addr`), remote-VTEP fdb
entries, Open vSwitch tables, and every fact source the modules loaded beside this one
declare (their FACTS), each under its name: what `vnetctl facts` prints, and what
snapshots and mesh planning read on the controller.

`sources`: `play` (the default) loads no other module: the sources of the modules the
play runs anyway; `all` has vnetctl send every module that declares FACTS, which is
what `vnetctl facts` asks for (under ansible-playbook only the built-in sources load)."""

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host

ARGUMENT_SPEC = {"sources": {"type": "str", "choices": ["play", "all"], "default": "play"}}


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
