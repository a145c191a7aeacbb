"""The modules vnetctl can push: their sources and argument specs, and the one way the
controller plans with them.

The files in `modules/` (shipped in the package as `vnetctl.hostmodules`) are the same
ones the hosts run. The controller loads them exactly as a host does, with the host
library (vnetctl.hostlib), so argument specs and the pure planners are read from the
one source. Controller code that plans a task on facts (the fleet's preflights, drift,
snapshots) does it through `facts`, `plan` and `read` here: the host library's own
Facts and plan(), never a copy of them; what the library refuses comes back as Refused.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vnetctl import hostlib
from vnetctl.hostlib import modules_dir
from vnetctl.hostside import boot

LIB_NAME = re.compile(r"\b(vnet_[a-z0-9_]+)\b")
# where a file uses another: its import statements (`import vnet_x as y`, `from
# ansible.module_utils import (vnet_x, vnet_y)`, `... .vnet_x import`) and the names it
# imports by a string ("vnet_vm_hook"); a name only in a comment or docstring ships
# nothing (four files of every link play did, ~0.6 ms of each host's CPU)
LIB_USE = re.compile(
    r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import[ \t]+(?:\([^)]*\)|[^\n]*)|import[ \t][^\n]*)"
    r"|[\"'](vnet_[a-z0-9_]+)[\"']",
    re.MULTILINE,
)

PERSISTS = re.compile(r"^def persist\(", re.MULTILINE)
PERSIST_LIB = "vnet_persist"


def libraries_used(text: str) -> set[str]:
    """The vnet_ names a source imports or names in a string (see LIB_USE)."""
    found = set()
    for match in LIB_USE.finditer(text):
        found |= {match[1]} if match[1] else set(LIB_NAME.findall(match[0]))
    return found


class Refused(Exception):
    """What the host library refuses (its ModuleError), as a host would say it;
    `argument`: the argument at fault, where the library names one."""

    def __init__(self, message: str, argument: str | None = None):
        super().__init__(message)
        self.argument = argument


class Catalog(Mapping[str, dict]):
    """Module name -> argument spec; also the sources to push and the loaded modules."""

    def __init__(self, directory: Path | None = None):
        self.directory = directory or modules_dir()
        self._loaded: dict[str, types.ModuleType] = {}
        # runner.payload packs the code a play sends once per module set, here
        self.packed_code: dict[tuple, str] = {}
        self.code_entries: dict[tuple, tuple] = {}  # and the files of each module set
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

    def host_lib_sources(
        self, modules: list[str] | None = None, extra: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """module_utils files by import name, vnet_host last (it imports the others):
        all of them, or those `modules` import (directly or through each other) plus
        what the host program itself uses (and the `extra` files). Each file is loaded
        on the host per play: send only what runs."""
        sources = hostlib.library_sources(self.directory)
        if modules is None:
            return sources
        texts = [self.source(m) for m in modules]
        # a module's persist() runs only where boot persistence is loaded (the play
        # asks vnet_persist), whether or not the module imports it
        persists = [PERSIST_LIB] if any(PERSISTS.search(t) for t in texts) else []
        wanted, todo = set(), [*boot.HOST_PROGRAM_LIBS, *extra, *persists, *texts]
        while todo:
            item = todo.pop()
            text = sources.get(item, item)  # a library's name, or a module's source
            for name in libraries_used(text) if item not in wanted else ():
                if name in sources and name not in wanted:
                    todo.append(name)
            if item in sources:
                wanted.add(item)
        return {name: text for name, text in sources.items() if name in wanted}

    def host_lib(self) -> types.ModuleType:
        """vnet_host (and its siblings), installed once under the names modules import."""
        return hostlib.load(self.directory)

    def facts(self, data: Mapping[str, Any]) -> Any:
        """Gathered or recorded facts as modules read them (the host library's Facts)."""
        return self.host_lib().Facts(data)

    def plan(self, name: str, args: Mapping[str, Any], facts: Any) -> dict[str, Any]:
        """A task of module `name` planned as its host plans it (the host library's
        plan(): arguments checked, read, desired, changes, steps) on `facts` (gathered
        data, or what `facts()` made of it). Refused when the library refuses it."""
        lib = self.host_lib()
        try:
            return lib.plan(self.load(name), dict(args), self._seen(facts))
        except lib.ModuleError as exc:
            raise Refused(str(exc), getattr(exc, "argument", None)) from None

    def read(self, name: str, query: Mapping[str, Any], facts: Any) -> dict[str, Any]:
        """What module `name`'s read() finds on `facts` for `query` (only the arguments
        that name the resource: a snapshot asking what a host has)."""
        lib = self.host_lib()
        try:
            return self.load(name).read(dict(query), self._seen(facts))
        except lib.ModuleError as exc:
            raise Refused(str(exc), getattr(exc, "argument", None)) from None

    def snapshot(self, name: str, facts: Any) -> list[dict[str, Any]]:
        """The params module `name` declares for what `facts` hold (the host library's
        snapshot(): none where the facts lack a source the module reads)."""
        return self.host_lib().snapshot(self.load(name), self._seen(facts))

    def ask(self, name: str, function: str, *args: Any) -> Any:
        """Module `name`'s own answer, `function(*args)`: a question of its rules with no
        host (a port group's security from its arguments). Refused where the library
        refuses."""
        lib = self.host_lib()
        try:
            return getattr(self.load(name), function)(*args)
        except lib.ModuleError as exc:
            raise Refused(str(exc), getattr(exc, "argument", None)) from None

    def _seen(self, facts: Any) -> Any:
        return self.facts(facts) if isinstance(facts, Mapping) else facts

    def flatten(self, state: Any) -> dict[str, Any]:
        """A module's state as dotted fields, as the host library diffs it."""
        return self.host_lib().flatten(state)

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
            self._loaded[name] = hostlib.install(f"vnet_module_{name}", path.read_text(), str(path))
        return self._loaded[name]
