"""vnetctl's modules as the Ansible collection vnetctl.kvm (scripts/build_collection.py):
built with `ansible-galaxy collection build`, installed with `ansible-galaxy collection
install` into a temporary path, and used by FQCN from a real ansible-playbook on a lab
host of the test's own: first run changed, second ok. The same playbook (FQCNs, debug
and assert included) then runs unchanged under `vnetctl run`: converged, nothing to do."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.labhosts import inventory_with, own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
VENV = ROOT / ".venv-ansible" / "bin"
BOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - vnetctl.kvm.linux_bridge: {name: brcol0, stp: false}
    - vnetctl.kvm.link: {name: brcol0, mtu: 1400}
    - ansible.builtin.assert: {that: [inventory_hostname is defined], quiet: true}
    - ansible.builtin.debug: {msg: "{{ inventory_hostname }} done"}
"""


def tool(name: str, *args: str, cwd: Path, env: dict | None = None):
    if not (VENV / name).exists():
        pytest.fail(f"{VENV / name} missing: run scripts/setup.sh --test")
    return subprocess.run([str(VENV / name), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("collection")
    built = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_collection.py"),
                            str(work / "src")], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert built.returncode == 0, built.stderr
    tree = Path(built.stdout.strip())
    build = tool("ansible-galaxy", "collection", "build", "--output-path", str(work), cwd=tree)
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = work.glob("vnetctl-kvm-*.tar.gz")
    install = tool("ansible-galaxy", "collection", "install", "-p", str(work / "installed"),
                   str(tarball), cwd=work)  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    assert (work / "installed" / "ansible_collections" / "vnetctl" / "kvm" / "plugins" /
            "modules" / "linux_bridge.py").is_file()  # fmt: skip
    return work / "installed"


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    folder = tmp_path_factory.mktemp("col")
    with own_lab("col", folder, hosts=1) as state:
        # boot files: not this test's subject
        inventory = inventory_with(state, folder / "inventory.yml",
                                   lambda _: {"vnetctl_persist": "none"})  # fmt: skip
        yield state, inventory, folder


def recap(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if re.search(r"\bok=\d+", line))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def test_the_collection_by_fqcn_under_ansible_playbook_then_vnetctl(installed, lab, capsys):
    state, inventory, folder = lab
    host = state.host_names[0]
    book = folder / "site.yml"
    book.write_text(BOOK)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_NOCOLOR="1",
               ANSIBLE_PIPELINING="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_SSH_ARGS=f"-o UserKnownHostsFile={state.known_hosts_path} "
               "-o StrictHostKeyChecking=yes -o ControlMaster=no")  # fmt: skip
    runs = [tool("ansible-playbook", "-i", str(inventory), str(book), cwd=folder, env=env)
            for _ in range(2)]  # fmt: skip
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    assert recap(runs[0].stdout)["changed"] == 2 and recap(runs[1].stdout)["changed"] == 0
    assert f"{host} done" in runs[1].stdout
    links = {link["ifname"]: link for link in json.loads(
        host_exec(state.name, host, ["ip", "-j", "link"]).stdout)}  # fmt: skip
    assert links["brcol0"]["mtu"] == 1400

    capsys.readouterr()
    code = main(["run", str(book), "-i", str(inventory), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    results = [(r["task"], r["status"], r["msg"]) for r in report["results"] if r["index"] >= 0]
    assert results == [
        ("vnetctl.kvm.linux_bridge", "ok", "ok"),
        ("vnetctl.kvm.link", "ok", "ok"),
        ("ansible.builtin.assert", "ok", "All assertions passed"),
        ("ansible.builtin.debug", "ok", f"{host} done"),
    ]
