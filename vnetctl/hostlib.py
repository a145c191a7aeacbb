"""The host library (modules/module_utils/, shipped as vnetctl.hostmodules) on the
controller: loaded as a host loads it, from the same files, so the controller keeps no
copy of its rules. What the controller takes from it by name is here: the argument
rulebook (vnet_params: argument checks, Ansible's booleans, what a YAML user calls a
type). Planning a task, through the library's own plan(), is vnetctl.catalog's.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import marshal
import os
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


@functools.lru_cache(maxsize=256)
def compiled(source: str, filename: str, optimize: int = 0) -> bytes:
    """`source` compiled (marshal) as a host compiles it: no -O unless asked, the file
    name given. Kept under ~/.cache/vnetctl/code by what it was made from, so a run does
    not compile the host library again (~90 ms a run); a kept file whose content does
    not match its check is compiled again, a cache that cannot be written is skipped."""
    key = f"{importlib.util.MAGIC_NUMBER.hex()} {optimize} {filename}\n{source}".encode()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "vnetctl" / "code" / hashlib.blake2b(key, digest_size=16).hexdigest()
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        if hashlib.blake2b(data[16:], digest_size=16).digest() == data[:16]:
            return data[16:]
    code = marshal.dumps(compile(source, filename, "exec", dont_inherit=True, optimize=optimize))
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.write_bytes(hashlib.blake2b(code, digest_size=16).digest() + code)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return code


def install(name: str, source: str, filename: str) -> types.ModuleType:
    """boot.install with the code `compiled` keeps."""
    return boot.install(name, source, compiled(source, filename), filename=filename)


def load(directory: Path | None = None) -> types.ModuleType:
    """vnet_host (and its siblings), installed once under the names modules import; the
    library of another modules directory (a test's copy) replaces it."""
    library = (directory or modules_dir()) / HOST_LIB_DIR
    installed = sys.modules.get(boot.HOST_LIB)
    if installed is None or installed.__file__ != str(library / f"{boot.HOST_LIB}.py"):
        for name, source in library_sources(directory).items():
            installed = install(name, source, str(library / f"{name}.py"))
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
