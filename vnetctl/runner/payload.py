"""What goes down a host's stdin for one play, and the command that reads it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from vnetctl.catalog import Catalog
from vnetctl.runner import remote_boot

BOOT_SOURCE = Path(remote_boot.__file__).read_text()


# -I: neither PYTHON* variables nor a json.py in the login directory can change what
# runs; -S: no site-packages (the host side is standard library only) and ~5 ms less
# start-up per host, which a 2-core controller hosting a 100-host lab feels.
INTERPRETER_FLAGS = ["-I", "-S"]


def remote_command(python: str, become: bool = False, become_user: str = "root") -> str:
    """The one process a host runs per play; sudo -n fails fast instead of prompting.
    `python` may carry words of its own, as Ansible allows ('/usr/bin/env python3')."""
    argv = [*shlex.split(python), *INTERPRETER_FLAGS, "-c", remote_boot.STUB]
    if become:
        argv = ["sudo", "-n", "-H", "-u", become_user, "--"] + argv
    return shlex.join(argv)


def build_stdin(catalog: Catalog, tasks: Sequence[dict], check: bool) -> str:
    """tasks: [{"index", "module", "args"}]; only the modules they use are sent."""
    needed = sorted({t["module"] for t in tasks})
    payload = {
        "libs": catalog.host_lib_sources(),
        "modules": {name: catalog.source(name) for name in needed},
        "tasks": list(tasks),
        "check": check,
    }
    return json.dumps(BOOT_SOURCE) + "\n" + json.dumps(payload) + "\n"
