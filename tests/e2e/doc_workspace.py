"""Where and how the documentation's commands run in tests: a workspace laid out as a
clone with a lab is (playbooks/, inventory/lab.yml), the rules that turn a documented
command into this machine's (the lab's allocated name, directories of the test's), and
the commands that cannot run inside a test, with the reason."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from doc_examples import Example
from vnetctl_process import ROOT, environment

NOT_RUN = {
    "./scripts/demo.sh": "installs (setup.sh) and brings up a lab named `demo`, which a "
    "person may be using on this machine",
    "./scripts/test.sh": "runs this test suite (and setup.sh): it would run itself",
    "./scripts/setup.sh --test": "installs system packages and the virtualenvs the tests run in",
    ".venv-dev/bin/pytest tests/unit": "the unit tests: part of the suite that runs this test",
    ".venv-dev/bin/pytest": "the whole suite, this test included: it would run itself",
    "./scripts/newest.sh": "installs the newest releases from PyPI and runs the unit tests: "
    "what it finds changes with the day, not with the change under test",
    "./scripts/lock.sh --upgrade": "rewrites the committed locks",
    **dict.fromkeys(
        (
            "./scripts/vagrant/tier.sh",
            "VNETCTL_VAGRANT_HOSTS=2 ./scripts/vagrant/tier.sh -k bond",
            "VNETCTL_VAGRANT_KEEP=1 ./scripts/vagrant/tier.sh",
        ),
        "the Vagrant tier: half an hour or more of emulated guests; run on its own "
        "(README, 'The Vagrant tier')",
    ),
    "./scripts/vagrant/down.sh": "removes the Vagrant tier's guests, which a tier run "
    "beside this suite may be using",
}
RUN_IN_REPOSITORY = {".venv-dev/bin/ruff check . && .venv-dev/bin/ruff format --check ."}
# not vnetctl, but run like its examples, in the workspace on the lab
OTHER_TOOLS = {
    "ANSIBLE_LIBRARY=modules ANSIBLE_MODULE_UTILS=modules/module_utils "
    ".venv-ansible/bin/ansible-playbook -i inventory/lab.yml playbooks/site.yml --check --diff"
}
INVENTORY = "inventory/lab.yml"  # where the documentation's lab keeps its inventory


class Workspace:
    """The directory the examples run in, as a clone with a lab would be: playbooks/,
    modules/, .venv-ansible/, inventory/lab.yml (the lab's own, `lab` being `self.lab`,
    an allocated name), the drift history and every absolute path of the examples."""

    def __init__(self, path: Path, lab: str):
        self.path, self.lab = path, lab
        self.root = path / "root"  # where absolute paths of the examples go
        self.env = environment(path / "state")
        for name in ("playbooks", "modules", ".venv-ansible"):
            (path / name).symlink_to(ROOT / name)
        self.inventory = path / INVENTORY

    def vnetctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["vnetctl", *args], capture_output=True, text=True,
                              env=self.env, cwd=self.path, timeout=300)  # fmt: skip

    def as_run_here(self, example: Example) -> str:
        """The command with this machine's names: the lab's, and the test's directories."""
        command = example.command.replace("lab-h", f"{self.lab}-h")
        words = example.words()
        if words[:2] == ["vnetctl", "lab"]:
            command = re.sub(r"--name \S+", "", command) + f" --name {self.lab}"
            if words[2] == "up" and "--inventory" not in words:
                command += f" --inventory {INVENTORY}"
        for path in sorted(set(re.findall(r"(?<![\w.])/(?:var|etc|srv)/[^\s'\"]+", command))):
            mirrored = self.root / path.lstrip("/")
            mirrored.parent.mkdir(parents=True, exist_ok=True)
            command = command.replace(path, str(mirrored))
        if words[:3] == ["vnetctl", "drift", "schedule"] and "--systemd" in words:
            command += f" --unit-dir {self.root}/etc/systemd/system"
        elif words[:3] == ["vnetctl", "drift", "schedule"] and "--cron" in words:
            command += f" --cron-dir {self.root}/etc/cron.d"
        elif words[:2] in (["vnetctl", "drift"], ["vnetctl", "stats"]) and "--every" in words:
            command += " --count 1"
        return command

    def run(self, example: Example) -> subprocess.CompletedProcess:
        """The example in bash (pipes fail as a whole), here or, for the few listed in
        RUN_IN_REPOSITORY, in the repository itself."""
        in_repository = example.command in RUN_IN_REPOSITORY
        command = example.command if in_repository else self.as_run_here(example)
        return subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True,
            timeout=600, env=self.env, cwd=ROOT if in_repository else self.path,
        )  # fmt: skip

    def check(self, example: Example, done: subprocess.CompletedProcess) -> None:
        """The example exited as documented, with no traceback."""
        shown = " and ".join(example.sources)
        assert done.returncode == example.exits, (
            f"{shown}: `{done.args[-1]}` exited {done.returncode}, documented "
            f"{example.exits}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr, shown
