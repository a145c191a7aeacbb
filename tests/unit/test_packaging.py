"""The built wheel holds everything: every package under vnetctl/ (found by setup.py, never
listed by hand: a new folder, even one without __init__.py, ships), every host module and
module_utils file (modules/, mapped in as vnetctl.hostmodules), the JSON schemas, and the
license. Built from a copy of the sources, with the locked setuptools (no index)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "vnetctl", "modules"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, set[str], str]:
    """(the copied source tree, the names in the wheel built from it, its METADATA)."""
    tree = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tree / name)
    # a package added tomorrow, without __init__.py: it must ship without an edit elsewhere
    (tree / "vnetctl" / "newfolder").mkdir()
    (tree / "vnetctl" / "newfolder" / "thing.py").write_text("X = 1\n")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(out), str(tree)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    [built] = out.glob("vnetctl-*.whl")
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        [metadata] = [name for name in names if name.endswith(".dist-info/METADATA")]
        return tree, names, archive.read(metadata).decode()


def test_every_controller_file_is_in_the_wheel(wheel):
    tree, names, _metadata = wheel
    wanted = {
        str(path.relative_to(tree))
        for path in (tree / "vnetctl").rglob("*")
        if path.suffix in (".py", ".json")
    }
    assert "vnetctl/newfolder/thing.py" in wanted
    assert wanted - names == set()


def test_every_host_module_and_module_utils_file_is_in_the_wheel(wheel):
    tree, names, _metadata = wheel
    wanted = {
        "vnetctl/hostmodules/" + str(path.relative_to(tree / "modules"))
        for path in (tree / "modules").rglob("*.py")
    }
    assert {"vnetctl/hostmodules/linux_bridge.py",
            "vnetctl/hostmodules/module_utils/vnet_host.py"} <= wanted  # fmt: skip
    assert wanted - names == set()


def test_the_wheel_carries_the_license_and_says_which(wheel):
    _tree, names, metadata = wheel
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert Parser().parsestr(metadata)["License-Expression"] == "Apache-2.0"
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
