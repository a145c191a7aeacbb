"""The modules vnetctl can push: their sources and argument specs.

The files in `modules/` (shipped in the package as `vnetctl.hostmodules`) are the same
ones the hosts run. The controller loads them exactly as a host does, so argument specs
and the pure planners are read from the one source.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from vnetctl.hostside import boot

HOST_LIB_DIR = "module_utils"


def modules_dir() -> Path:
    return Path(str(resources.files("vnetctl.hostmodules")))


class Catalog(Mapping[str, dict]):
    """Module name -> argument spec; also the sources to push and the loaded modules."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or modules_dir()
        self._loaded: dict[str, types.ModuleType] = {}
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

    def host_lib_sources(self) -> dict[str, str]:
        """Every module_utils file by import name, vnet_host last (it imports the others)."""
        files = sorted(
            (self.directory / HOST_LIB_DIR).glob("vnet_*.py"),
            key=lambda p: (p.stem == boot.HOST_LIB, p.stem),
        )
        return {path.stem: path.read_text() for path in files}

    def host_lib(self) -> types.ModuleType:
        """vnet_host (and its siblings), installed once under the names modules import."""
        lib = self.directory / HOST_LIB_DIR / f"{boot.HOST_LIB}.py"
        installed = sys.modules.get(boot.HOST_LIB)
        if installed is None or installed.__file__ != str(lib):
            for name in self.host_lib_sources():
                path = self.directory / HOST_LIB_DIR / f"{name}.py"
                installed = boot.install(name, path.read_text(), str(path))
        return installed

    def load(self, name: str) -> types.ModuleType:
        if name not in self._loaded:
            self.host_lib()
            path = self.directory / f"{name}.py"
            self._loaded[name] = boot.install(f"vnet_module_{name}", path.read_text(), str(path))
        return self._loaded[name]
