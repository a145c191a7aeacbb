"""Labs sharing a machine: a subnet another lab holds is refused naming that lab, before
anything is made; a lab reserved for a process that is gone (a killed test run) is
removed, by its own name, by the next allocation; `--subnet auto` takes a free one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import allocate_lab, lab_down, lab_up, load_state
from vnetctl.lab.netns import existing_namespaces

pytestmark = pytest.mark.lab


def test_a_subnet_another_lab_holds_is_refused_naming_that_lab(lab_required, tmp_path, capsys):
    with own_lab("al", tmp_path, hosts=1) as held:
        other = allocate_lab("al", hosts=1).name  # a free name; its record goes below
        lab_down(other)
        code = main(["lab", "up", "--name", other, "--hosts", "1", "--subnet", held.subnet,
                     "--inventory", str(tmp_path / "other.yml")])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 1
        assert f"overlaps lab {held.name!r}" in err and f"lab down --name {held.name}" in err
        assert load_state(other) is None  # nothing reserved, nothing made


def test_a_lab_whose_owner_is_gone_is_removed_by_the_next_allocation(lab_required, tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a test run killed before its clean-up ran
    abandoned = allocate_lab("ab", hosts=1, owner=child.pid)
    lab_up(abandoned.name, hosts=1, inventory_path=tmp_path / "abandoned.yml")
    namespace = f"vnl-{abandoned.name}-h1"
    assert namespace in existing_namespaces()
    mine = allocate_lab("ab", hosts=1)
    try:
        again = load_state(abandoned.name)  # its name is free: it may be given out again
        assert again is None or again.owner == mine.owner != abandoned.owner
        assert namespace not in existing_namespaces()
        assert not (tmp_path / "abandoned.yml").exists()
    finally:
        lab_down(mine.name)


def test_subnet_auto_takes_a_free_one(lab_required, tmp_path, capsys):
    name = allocate_lab("au", hosts=1).name
    lab_down(name)  # a free name, for `lab up` to make from nothing
    try:
        code = main(["lab", "up", "--name", name, "--hosts", "1", "--subnet", "auto",
                     "--inventory", str(tmp_path / "lab.yml")])  # fmt: skip
        out = capsys.readouterr().out
        state = load_state(name)
        assert code == 0 and state.subnet != "auto"
        assert "up in" in out and f"on {state.subnet}" in out
        assert f"remove it with: vnetctl lab down --name {name}" in out
    finally:
        lab_down(name)
