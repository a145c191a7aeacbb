"""Every command the documentation shows (the README's ```sh blocks, every --help) runs
against a lab and exits as documented: `(exit N)` in its comment, else 0.

The examples are read from the text itself (tests/e2e/doc_examples.py): a new example
is tested as soon as it is written. What the test changes, it changes by rules, never
per example: the lab's name for `lab` (`--name`, `lab-h1`), a directory of its own for
absolute paths (/var/..., /etc/...) and for systemd units and cron lines, one round
for `--every`. What an example needs first is set up by its kind: a drift check runs
on hosts where its playbook was applied (and, for `(exit 2)`, changed by hand after), a
mesh check on hosts with the mesh, `-e @FILE` finds FILE, a playbook an example writes
with -o is written first, `drift history --run N` finds run N, `drift report` finds a
check recorded by two shards. Commands that cannot run
here are listed in NOT_RUN with the reason; any other example that is not a vnetctl
command fails this test until it is listed or made one.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_examples import Example, documented_examples
from doc_workspace import NOT_RUN, OTHER_TOOLS, RUN_IN_REPOSITORY, Workspace
from vnetctl_process import ROOT

from tests.labhosts import lab_skip_reason, own_lab
from vnetctl.drift.history import History
from vnetctl.lab import host_exec, load_state, reset_hosts

EXAMPLES = documented_examples(ROOT / "README.md")
# made by hand after applying the playbook: what `(exit 2)` of a drift check needs
DRIFT_BY_HAND = {"site.yml": ["ip", "link", "set", "dev", "eth2", "mtu", "1500"]}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Iterator[Workspace]:
    """A 3-host lab with Open vSwitch, of this module's own (allocated name and subnet),
    its inventory in the workspace, as inventory/lab.yml and inventory/prod.yml."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("docs")
    with own_lab("dx", path / "inventory", hosts=3, ovs=True) as state:
        space = Workspace(path, state.name)
        shutil.copy(space.inventory, space.inventory.with_name("prod.yml"))
        yield space


def fresh_hosts(space: Workspace) -> None:
    """Every host as `lab up` made it: sshd running, no bridges, no OVS bridges."""
    reset_hosts(space.lab)


def prepare(example: Example, space: Workspace) -> None:
    """What the example needs first, by its kind (see the module's docstring)."""
    fresh_hosts(space)
    words = shlex.split(example.command.split("|")[0])
    state = load_state(space.lab)
    for word in words:
        if word.startswith("@") and not (space.path / word[1:]).exists():
            (space.path / word[1:]).write_text("{}\n")
    playbook = next((w for w in words[1:] if w.endswith((".yml", ".yaml"))), None)
    if playbook and words[1] in ("run", "drift", "mesh") and not (space.path / playbook).exists():
        writer = next(e for e in EXAMPLES if f"-o {playbook}" in e.command)
        run_setup(space, shlex.split(space.as_run_here(writer))[1:])
    checks = words[1] == "drift" and words[2] not in ("history", "report", "schedule")
    if (checks or words[1:3] == ["mesh", "check"]) and example.exits in (0, 2):
        run_setup(space, ["run", playbook, "-i", "inventory/lab.yml"])
    if checks and example.exits == 2:
        recipe = DRIFT_BY_HAND.get(Path(playbook).name)
        assert recipe, f"{example.command}: say in DRIFT_BY_HAND how to make drift for it"
        host_exec(space.lab, state.host_names[1], recipe, check=True)
    if words[1:3] == ["drift", "report"]:  # a check recorded by two shards, no drift
        run_setup(space, ["run", "playbooks/site.yml", "-i", "inventory/lab.yml"])
        for shard in ("1/2", "2/2"):
            run_setup(space, ["drift", "playbooks/site.yml", "-i", "inventory/lab.yml",
                              "--shard", shard])  # fmt: skip
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
    if example.command not in RUN_IN_REPOSITORY:
        prepare(example, workspace)
    workspace.check(example, workspace.run(example))


def test_every_example_is_run_or_listed():
    """A new example is a vnetctl command (run above) or is listed with its reason."""
    others = {e.command for e in EXAMPLES if not e.is_vnetctl}
    unlisted = others - set(NOT_RUN) - RUN_IN_REPOSITORY - OTHER_TOOLS
    assert not unlisted, f"not a vnetctl command, not listed in NOT_RUN: {sorted(unlisted)}"
    stale = (set(NOT_RUN) | RUN_IN_REPOSITORY | OTHER_TOOLS) - others
    assert not stale, f"listed, but no longer in the docs: {sorted(stale)}"
