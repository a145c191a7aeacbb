"""The modules vnetctl can push: their sources and argument specs.

The files in `modules/` (shipped in the package as `vnetctl.hostmodules`) are the same
ones the hosts run. The controller loads them exactly as a host does, so argument specs
and the pure planners are read from the one source.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from vnetctl.hostside import boot

HOST_LIB_DIR = "module_utils"
# `import vnet_x`, `from ansible.module_utils import vnet_x, vnet_y`, `... .vnet_x import`
LIB_IMPORT = re.compile(r"\b(vnet_[a-z0-9_]+)\b")


def modules_dir() -> Path:
    return Path(str(resources.files("vnetctl.hostmodules")))


class Catalog(Mapping[str, dict]):
    """Module name -> argument spec; also the sources to push and the loaded modules."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or modules_dir()
        self._loaded: dict[str, types.ModuleType] = {}
        # runner.payload packs the code a play sends once per module set, here
        self.packed_code: dict[tuple, str] = {}
        self._names = sorted(
            p.stem for p in self.directory.glob("*.py") if not p.name.startswith("_")
        )

    def __getitem__(self, name: str) -> dict:
        if name not in self._names:
            raise KeyError(name)
        return self.load(name).ARGUMENT_SPEC

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def source(self, name: str) -> str:
        return (self.directory / f"{name}.py").read_text()

    def host_lib_sources(self, modules: list[str] | None = None) -> dict[str, str]:
        """module_utils files by import name, vnet_host last (it imports the others):
        all of them, or those `modules` import (directly or through each other) plus
        what the host program itself uses. Each file is compiled on the host per play:
        send only what runs."""
        files = sorted(
            (self.directory / HOST_LIB_DIR).glob("vnet_*.py"),
            key=lambda p: (p.stem == boot.HOST_LIB, p.stem),
        )
        sources = {path.stem: path.read_text() for path in files}
        if modules is None:
            return sources
        wanted, todo = set(), [*boot.HOST_PROGRAM_LIBS, *(self.source(m) for m in modules)]
        while todo:
            item = todo.pop()
            text = sources.get(item, item)  # a library's name, or a module's source
            for name in LIB_IMPORT.findall(text) if item not in wanted else ():
                if name in sources and name not in wanted:
                    todo.append(name)
            if item in sources:
                wanted.add(item)
        return {name: text for name, text in sources.items() if name in wanted}

    def host_lib(self) -> types.ModuleType:
        """vnet_host (and its siblings), installed once under the names modules import."""
        lib = self.directory / HOST_LIB_DIR / f"{boot.HOST_LIB}.py"
        installed = sys.modules.get(boot.HOST_LIB)
        if installed is None or installed.__file__ != str(lib):
            for name in self.host_lib_sources():
                path = self.directory / HOST_LIB_DIR / f"{name}.py"
                installed = boot.install(name, path.read_text(), filename=str(path))
        return installed

    def resource_name(self, name: str, args: dict) -> Any:
        """What a task of module `name` declares: its `name` argument, or the module's own
        name for it (`resource_name(params)`, a route's destination, table and metric)."""
        module = self.load(name)
        if hasattr(module, "resource_name"):
            return module.resource_name(args)
        return args.get("name") if "name" in module.ARGUMENT_SPEC else None

    def load(self, name: str) -> types.ModuleType:
        if name not in self._loaded:
            self.host_lib()
            path = self.directory / f"{name}.py"
            self._loaded[name] = boot.install(
                f"vnet_module_{name}", path.read_text(), filename=str(path)
            )
        return self._loaded[name]
