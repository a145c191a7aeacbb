"""No command prints a warning it did not cause: importing any part of vnetctl (the
transports with asyncssh and paramiko among them) prints nothing, even with every
warning shown (`-W always`), in a fresh interpreter as a command starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
IMPORT_ALL = """
import importlib, pkgutil, vnetctl
for module in pkgutil.walk_packages(vnetctl.__path__, "vnetctl."):
    if module.name != "vnetctl.__main__":
        importlib.import_module(module.name)
import bench.floor
"""


def test_importing_every_module_prints_no_warning():
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", IMPORT_ALL],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_a_warning_asyncssh_gives_at_run_time_still_shows():
    """Only the import's own DSA warnings are ignored, not the category for good."""
    code = (
        "import warnings\n"
        "from vnetctl.transport.asyncssh_module import asyncssh\n"
        "from cryptography.utils import CryptographyDeprecationWarning as W\n"
        "warnings.warn_explicit('DSA is deprecated', W, 'x.py', 1, module='asyncssh.x')\n"
    )
    done = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert "DSA is deprecated" in done.stderr
