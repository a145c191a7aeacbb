"""The tools compared, each told to do a workload on the lab: its argv and environment.

Every tool gets the lab's inventory, its key and its known_hosts (strict checking), and
runs all hosts at once (forks/parallel = N). Ansible gets the fairest settings there
are: pipelining, no fact gathering, our own modules on its library path, the lab's
python3; its ControlMaster sockets live in a directory the harness empties after each run.
Where the lab adds a round trip, the inventory names each host by its relay
(127.0.0.1 and a port): every tool goes through it, pyinfra by `ssh_hostname`/`ssh_port`.

The workload `drift` is each tool's check of playbooks/site.yml on converged hosts:
`vnetctl drift`, `ansible-playbook --check --diff`, and for pyinfra (which has no check
mode for shell operations) the guards of its site deploy alone, each failing on a
difference.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vnetctl.fleet.workers import cores
from vnetctl.lab import LabState

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VNETCTL = Path(sys.executable).with_name("vnetctl")
ANSIBLE = ROOT / ".venv-ansible" / "bin" / "ansible-playbook"
PYINFRA = ROOT / ".venv-pyinfra" / "bin" / "pyinfra"

PLAYBOOKS = {
    "site-first": ROOT / "playbooks" / "site.yml",
    "site-noop": ROOT / "playbooks" / "site.yml",
    "ten-tasks": BENCH / "workloads" / "ten_tasks.yml",
    "drift": ROOT / "playbooks" / "site.yml",
}
PYINFRA_DEPLOYS = {
    "site-first": BENCH / "workloads" / "pyinfra_site.py",
    "site-noop": BENCH / "workloads" / "pyinfra_site.py",
    "ten-tasks": BENCH / "workloads" / "pyinfra_ten_tasks.py",
    "drift": BENCH / "workloads" / "pyinfra_drift.py",
}
WORKLOADS = tuple(PLAYBOOKS)

Command = tuple[list[str], dict[str, str], tuple[int, ...]]  # argv, env, exit codes that are ok


@dataclass
class Tool:
    name: str
    command: Callable[[str, LabState, Path], Command | None]  # None: not for this workload
    available: Callable[[], str | None]  # None when available, else why not
    curve: bool = False  # also measured at the curve's sizes (at the largest RTT)


def _vnetctl(workload: str, lab: LabState, work: Path, workers: str = "1") -> Command:
    command = "drift" if workload == "drift" else "run"
    argv = [str(VNETCTL), command, str(PLAYBOOKS[workload]), "-i", str(lab.inventory_path)]
    argv += ["--forks", str(len(lab.hosts)), "--format", "json", "--workers", workers]
    return argv + (["--no-history"] if workload == "drift" else []), {}, (0,)


def _vnetctl_workers(workload: str, lab: LabState, work: Path) -> Command:
    """vnetctl with a worker process per core (`--workers N`, N = the cores)."""
    return _vnetctl(workload, lab, work, str(cores()))


def ansible_env(lab: LabState, work: Path, mitogen: bool = False) -> dict[str, str]:
    env = {
        "ANSIBLE_LIBRARY": str(ROOT / "modules"),
        "ANSIBLE_MODULE_UTILS": str(ROOT / "modules" / "module_utils"),
        "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_FORKS": str(len(lab.hosts)),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "1",
        "ANSIBLE_SSH_ARGS": f"-o UserKnownHostsFile={lab.known_hosts_path} "
        "-o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"),
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
    }
    if mitogen:
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(mitogen_strategy_dir())
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return env


def _ansible(workload: str, lab: LabState, work: Path, mitogen: bool = False) -> Command:
    argv = [str(ANSIBLE), "-i", str(lab.inventory_path), str(PLAYBOOKS[workload])]
    check = ["--check", "--diff"] if workload == "drift" else []
    return argv + check, ansible_env(lab, work, mitogen), (0,)


def mitogen_strategy_dir() -> Path:
    python = ANSIBLE.with_name("python")
    out = subprocess.run(
        [str(python), "-c", "import ansible_mitogen, os; print(os.path.dirname("
         "ansible_mitogen.__file__))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return Path(out.stdout.strip()) / "plugins" / "strategy"


def _mitogen_missing() -> str | None:
    if not ANSIBLE.exists():
        return f"{ANSIBLE} missing"
    python = ANSIBLE.with_name("python")
    done = subprocess.run([str(python), "-c", "import ansible_mitogen"], capture_output=True)
    return None if done.returncode == 0 else "mitogen is not installed in .venv-ansible"


def pyinfra_inventory(lab: LabState, work: Path) -> Path:
    path = work / "pyinfra_inventory.py"
    data = {
        "ssh_user": "root",
        "ssh_key": str(lab.key_path),
        "ssh_known_hosts_file": str(lab.known_hosts_path),
        "ssh_strict_host_key_checking": "yes",
    }
    hosts = []
    for host in lab.hosts:
        address, port = host.ssh_endpoint
        hosts.append((host.name, {**data, "ssh_hostname": address, "ssh_port": port}))
    path.write_text(f"hosts = {hosts!r}\n")
    return path


def _pyinfra(workload: str, lab: LabState, work: Path) -> Command:
    inventory = pyinfra_inventory(lab, work)
    argv = [str(PYINFRA), str(inventory), str(PYINFRA_DEPLOYS[workload]), "-y"]
    return argv + ["--parallel", str(len(lab.hosts))], {}, (0,)


def _floor(workload: str, lab: LabState, work: Path) -> Command:
    return [sys.executable, "-m", "bench.floor", str(lab.inventory_path)], {}, (0,)


def _exists(path: Path) -> Callable[[], str | None]:
    return lambda: None if path.exists() else f"{path} missing (scripts/bench.sh installs it)"


OPT_IN = {"vnetctl-workers"}  # measured only when --tools names it
TOOLS = {
    tool.name: tool
    for tool in [
        Tool("vnetctl", _vnetctl, _exists(VNETCTL), curve=True),
        Tool("vnetctl-workers", _vnetctl_workers, _exists(VNETCTL), curve=True),
        Tool("ansible", _ansible, _exists(ANSIBLE)),
        Tool("ansible-mitogen", lambda w, lab, d: _ansible(w, lab, d, True), _mitogen_missing),
        Tool("pyinfra", _pyinfra, _exists(PYINFRA), curve=True),
        Tool("floor", _floor, lambda: None, curve=True),
    ]
}
