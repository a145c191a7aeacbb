"""Every command the documentation shows (the README's ```sh blocks, every --help) runs
against a lab and exits as documented: `(exit N)` in its comment, else 0.

The examples are read from the text itself (tests/e2e/doc_examples.py): a new example
is tested as soon as it is written. What the test changes, it changes by rules, never
per example: the lab's name for `lab` (`--name`, `lab-h1`), a directory of its own for
absolute paths (/var/..., /etc/...) and for systemd units and cron lines, one round
for `--every`. What an example needs first is set up by its kind: a drift check runs
on hosts where its playbook was applied (and, for `(exit 2)`, changed by hand after), a
mesh check on hosts with the mesh, `-e @FILE` finds FILE, a playbook an example writes
with -o is written first, `drift history --run N` finds run N. Commands that cannot run
here are listed in NOT_RUN with the reason; any other example that is not a vnetctl
command fails this test until it is listed or made one.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from doc_examples import Example, documented_examples
from vnetctl_process import ROOT, environment

from tests.labhosts import LAB3_NAME, LAB3_SUBNET, lab_skip_reason
from vnetctl.drift.history import History
from vnetctl.lab import host_exec, lab_down, lab_up, load_state, reset_hosts, start_sshd

NOT_RUN = {
    "./scripts/demo.sh": "brings up its own lab on the default subnet 10.213.0.0/16, which "
    "a person may be using on this machine",
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
EXAMPLES = documented_examples(ROOT / "README.md")
# made by hand after applying the playbook: what `(exit 2)` of a drift check needs
DRIFT_BY_HAND = {"site.yml": ["ip", "link", "set", "dev", "eth2", "mtu", "1500"]}


class Workspace:
    """The directory the examples run in, as a clone with a lab would be: playbooks/,
    inventory/lab.yml (the lab's own) and inventory/prod.yml (a copy)."""

    def __init__(self, path: Path):
        self.path = path
        self.root = path / "root"  # where absolute paths of the examples go
        self.env = environment(path / "state")
        (path / "playbooks").symlink_to(ROOT / "playbooks")
        self.inventory = path / "inventory" / "lab.yml"

    def vnetctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["vnetctl", *args], capture_output=True, text=True,
                              env=self.env, cwd=self.path, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    """The session's lab name and subnet, for this module alone: a 3-host lab with Open
    vSwitch, its inventory in the workspace; the session's lab is put back after."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    space = Workspace(tmp_path_factory.mktemp("docs"))
    before = load_state(LAB3_NAME)
    lab_down(LAB3_NAME)
    try:
        lab_up(LAB3_NAME, hosts=3, subnet=LAB3_SUBNET, inventory_path=space.inventory, ovs=True)
        shutil.copy(space.inventory, space.inventory.with_name("prod.yml"))
        yield space
    finally:
        lab_down(LAB3_NAME)
        if before is not None:
            lab_up(LAB3_NAME, hosts=len(before.hosts), subnet=before.subnet,
                   inventory_path=before.inventory_path, ovs=before.ovs)  # fmt: skip


def as_run_here(example: Example, space: Workspace) -> str:
    """The command with this machine's names: the lab's, and directories of the test's."""
    command = example.command.replace("lab-h", f"{LAB3_NAME}-h")
    words = example.words()
    if words[:2] == ["vnetctl", "lab"]:
        command = re.sub(r"--name \S+", "", command) + f" --name {LAB3_NAME}"
    for path in sorted(set(re.findall(r"(?<![\w.])/(?:var|etc|srv)/[^\s'\"]+", command))):
        mirrored = space.root / path.lstrip("/")
        mirrored.parent.mkdir(parents=True, exist_ok=True)
        command = command.replace(path, str(mirrored))
    if words[:3] == ["vnetctl", "drift", "schedule"] and "--systemd" in words:
        command += f" --unit-dir {space.root}/etc/systemd/system"
    elif words[:3] == ["vnetctl", "drift", "schedule"] and "--cron" in words:
        command += f" --cron-dir {space.root}/etc/cron.d"
    elif words[:2] == ["vnetctl", "drift"] and "--every" in words:
        command += " --count 1"
    return command


def fresh_hosts(space: Workspace) -> None:
    """Every host as `lab up` made it: sshd running, no bridges, no OVS bridges."""
    state = load_state(LAB3_NAME)
    for host in state.host_names:
        start_sshd(LAB3_NAME, host)
        script = "for b in $(ovs-vsctl list-br); do ovs-vsctl del-br $b; done"
        assert host_exec(LAB3_NAME, host, ["sh", "-c", script]).returncode == 0
    reset_hosts(LAB3_NAME)


def prepare(example: Example, space: Workspace) -> None:
    """What the example needs first, by its kind (see the module's docstring)."""
    fresh_hosts(space)
    words = shlex.split(example.command.split("|")[0])
    state = load_state(LAB3_NAME)
    for word in words:
        if word.startswith("@") and not (space.path / word[1:]).exists():
            (space.path / word[1:]).write_text("{}\n")
    playbook = next((w for w in words[1:] if w.endswith((".yml", ".yaml"))), None)
    if playbook and words[1] in ("run", "drift", "mesh") and not (space.path / playbook).exists():
        writer = next(e for e in EXAMPLES if f"-o {playbook}" in e.command)
        run_setup(space, shlex.split(as_run_here(writer, space))[1:])
    checks = words[1] == "drift" and words[2] not in ("history", "schedule")
    if (checks or words[1:3] == ["mesh", "check"]) and example.exits in (0, 2):
        run_setup(space, ["run", playbook, "-i", "inventory/lab.yml"])
    if checks and example.exits == 2:
        recipe = DRIFT_BY_HAND.get(Path(playbook).name)
        assert recipe, f"{example.command}: say in DRIFT_BY_HAND how to make drift for it"
        host_exec(LAB3_NAME, state.host_names[1], recipe, check=True)
    if words[1:3] == ["drift", "history"] and "--run" in words:
        wanted = int(words[words.index("--run") + 1])
        assert wanted <= 20, "keep run numbers of examples small: each is a drift check"
        (space.path / "state").mkdir(exist_ok=True)
        for _ in range(wanted):
            with History(space.path / "state" / "drift.sqlite") as history:
                if history.has_run(wanted):
                    break
            run_setup(space, ["drift", "playbooks/site.yml", "-i", "inventory/lab.yml"], (0, 2))


def run_setup(space: Workspace, args: list[str], ok: tuple[int, ...] = (0,)) -> None:
    done = space.vnetctl(*args)
    assert done.returncode in ok, f"setup `vnetctl {' '.join(args)}`: {done.stderr}"


def order(example: Example) -> int:
    return 1 if example.words()[:3] == ["vnetctl", "lab", "down"] else 0  # the lab goes last


RUNNABLE = sorted((e for e in EXAMPLES if e.command not in NOT_RUN), key=order)


@pytest.mark.lab
@pytest.mark.parametrize("example", RUNNABLE, ids=lambda e: f"{e.sources[0]}: {e.command}")
def test_the_example_runs_and_exits_as_documented(example: Example, workspace: Workspace):
    in_repository = example.command in RUN_IN_REPOSITORY
    if not in_repository:
        prepare(example, workspace)
    command = example.command if in_repository else as_run_here(example, workspace)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=600,
        env=workspace.env, cwd=ROOT if in_repository else workspace.path,
    )  # fmt: skip
    shown = " and ".join(example.sources)
    assert done.returncode == example.exits, (
        f"{shown}: `{command}` exited {done.returncode}, documented {example.exits}\n"
        f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def test_every_example_is_run_or_listed():
    """A new example is a vnetctl command (run above) or is listed with its reason."""
    others = {e.command for e in EXAMPLES if not e.is_vnetctl}
    unlisted = others - set(NOT_RUN) - RUN_IN_REPOSITORY
    assert not unlisted, f"not a vnetctl command, not listed in NOT_RUN: {sorted(unlisted)}"
    stale = (set(NOT_RUN) | RUN_IN_REPOSITORY) - others
    assert not stale, f"listed, but no longer in the docs: {sorted(stale)}"
