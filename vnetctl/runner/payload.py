"""What goes down a host's stdin for one play, and the command that reads it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from vnetctl.catalog import Catalog
from vnetctl.runner import remote_boot

BOOT_SOURCE = Path(remote_boot.__file__).read_text()


def remote_command(python: str, become: bool = False, become_user: str = "root") -> str:
    """The one process a host runs per play; sudo -n fails fast instead of prompting."""
    argv = [python, "-c", remote_boot.STUB]
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
