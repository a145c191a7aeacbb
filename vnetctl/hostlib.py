"""The host library (modules/module_utils/, shipped as vnetctl.hostmodules) on the
controller: loaded as a host loads it, from the same files, so the controller keeps no
copy of its rules. What the controller takes from it by name is here: the argument
rulebook (vnet_params: argument checks, Ansible's booleans, what a YAML user calls a
type). Planning a task, through the library's own plan(), is vnetctl.catalog's.
"""

from __future__ import annotations

import functools
import sys
import types
from importlib import resources
from pathlib import Path
from typing import Any

from vnetctl.hostside import boot

HOST_LIB_DIR = "module_utils"


def modules_dir() -> Path:
    return Path(str(resources.files("vnetctl.hostmodules")))


def library_sources(directory: Path | None = None) -> dict[str, str]:
    """The library's files by import name, vnet_host last (it imports the others)."""
    files = sorted(
        ((directory or modules_dir()) / HOST_LIB_DIR).glob("vnet_*.py"),
        key=lambda p: (p.stem == boot.HOST_LIB, p.stem),
    )
    return {path.stem: path.read_text() for path in files}


def load(directory: Path | None = None) -> types.ModuleType:
    """vnet_host (and its siblings), installed once under the names modules import; the
    library of another modules directory (a test's copy) replaces it."""
    library = (directory or modules_dir()) / HOST_LIB_DIR
    installed = sys.modules.get(boot.HOST_LIB)
    if installed is None or installed.__file__ != str(library / f"{boot.HOST_LIB}.py"):
        for name, source in library_sources(directory).items():
            installed = boot.install(name, source, filename=str(library / f"{name}.py"))
    return installed


@functools.cache
def rules() -> types.ModuleType:
    """The argument rulebook (vnet_params) of the library the hosts get."""
    return load().vnet_params


def parse_bool(value: Any) -> bool | None:
    """Ansible's booleans: True/False, 1/0, yes/no, on/off, true/false, y/n, t/f (any
    case); None for anything else."""
    return rules().parse_bool(value)


def type_name(value: Any) -> str:
    """What a YAML user calls the type of a value: mapping, list, string, ..."""
    return rules().type_name(value)
