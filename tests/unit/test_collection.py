"""The collection vnetctl.kvm (scripts/build_collection.py), offline: generated from
modules/, built and installed by the real ansible-galaxy, documented for ansible-doc
(DOCUMENTATION from each ARGUMENT_SPEC), and through the ansible-test sanity tests that
run without a network (the others install their own virtualenvs with pip from the
network). The lab test (tests/integration/test_collection_lab.py) runs it on a host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
VENV = ROOT / ".venv-ansible" / "bin"
OFFLINE_SANITY = (
    "action-plugin-docs", "compile", "empty-init", "line-endings", "no-assert",
    "no-get-exception", "no-illegal-filenames", "no-smart-quotes", "replace-urlopen",
    "shebang", "symlinks", "use-argspec-type-path", "use-compat-six",
)  # fmt: skip

pytestmark = pytest.mark.skipif(not VENV.exists(), reason="run scripts/setup.sh --test")


def run(*argv: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("collection")
    tree = Path(run(sys.executable, str(ROOT / "scripts" / "build_collection.py"),
                    str(work / "src"), cwd=ROOT).stdout.strip())  # fmt: skip
    run(str(VENV / "ansible-galaxy"), "collection", "build", "--output-path", str(work),
        cwd=tree)  # fmt: skip
    (tarball,) = work.glob("vnetctl-kvm-*.tar.gz")
    run(str(VENV / "ansible-galaxy"), "collection", "install", "-p", str(work / "inst"),
        str(tarball), cwd=work)  # fmt: skip
    return work / "inst" / "ansible_collections" / "vnetctl" / "kvm"


def test_every_module_but_command_with_the_host_library(installed):
    modules = {p.stem for p in (installed / "plugins" / "modules").glob("*.py")}
    ours = {p.stem for p in (ROOT / "modules").glob("*.py") if not p.name.startswith("_")}
    assert modules == ours - {"host_command"}
    utils = {p.name for p in (installed / "plugins" / "module_utils").glob("vnet_*.py")}
    assert utils == {p.name for p in (ROOT / "modules" / "module_utils").glob("vnet_*.py")}
    text = (installed / "plugins" / "modules" / "linux_bridge.py").read_text()
    assert "from ansible_collections.vnetctl.kvm.plugins.module_utils.vnet_host import" in text
    assert "from ansible.module_utils import" not in text


def test_ansible_doc_reads_the_generated_documentation(installed):
    env = {"ANSIBLE_COLLECTIONS_PATH": str(installed.parents[2]), "PATH": "/usr/bin:/bin",
           "HOME": str(installed.parents[2])}  # fmt: skip
    doc = json.loads(run(str(VENV / "ansible-doc"), "--json", "vnetctl.kvm.link",
                         cwd=installed, env=env).stdout)  # fmt: skip
    options = doc["vnetctl.kvm.link"]["doc"]["options"]
    assert options["name"]["type"] == "str" and options["name"]["required"] is True
    assert options["admin_state"]["choices"] == ["up", "down"]
    bridge = yaml.safe_load((installed / "plugins" / "modules" / "linux_bridge.py").read_text()
                            .split("DOCUMENTATION = r'''\n")[1].split("'''")[0])  # fmt: skip
    assert bridge["options"]["ports"] == {"description": ["`ports`."], "type": "list",
                                          "elements": "str"}  # fmt: skip


def test_ansible_test_sanity_offline(installed):
    tests = [word for name in OFFLINE_SANITY for word in ("--test", name)]
    run(str(VENV / "ansible-test"), "sanity", "--local", "--python",
        f"{sys.version_info.major}.{sys.version_info.minor}", *tests, cwd=installed)  # fmt: skip
