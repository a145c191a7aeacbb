"""The host library's layout: each module_utils file imports only the files installed
before it (a host installs them in the catalog's order, vnet_host last, and a file that
imports one not yet installed fails every play), and every file under modules/ stays
under 400 lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog
from vnetctl.hostlib import HOST_LIB_DIR, modules_dir

CATALOG = Catalog()
ORDER = list(CATALOG.host_lib_sources())
MAX_LINES = 400
IMPORTED = re.compile(r"^\s*(?:import (vnet_\w+)|from ansible\.module_utils import (.+))$", re.M)


def imports(source: str) -> set[str]:
    found = set()
    for plain, listed in IMPORTED.findall(source):
        found |= {plain} if plain else {w.split(" as ")[0].strip() for w in listed.split(",")}
    return {name for name in found if name.startswith("vnet_")}


@pytest.mark.parametrize("name", ORDER)
def test_a_library_file_imports_only_files_installed_before_it(name):
    source = (modules_dir() / HOST_LIB_DIR / f"{name}.py").read_text()
    later = sorted(n for n in imports(source) if ORDER.index(n) > ORDER.index(name))
    assert not later, f"{name} imports {later}, installed after it"


def test_the_check_reads_both_import_forms():
    assert imports("try:\n    from ansible.module_utils import vnet_core, vnet_fib\n"
                   "except ImportError:\n    import vnet_ovs\n") == {"vnet_core", "vnet_fib",
                                                                    "vnet_ovs"}  # fmt: skip


@pytest.mark.parametrize("path", sorted(modules_dir().rglob("*.py")), ids=lambda p: p.name)
def test_every_host_file_is_under_400_lines(path: Path):
    assert len(path.read_text().splitlines()) < MAX_LINES
