"""The README runs top to bottom as written: every command of its ```sh blocks, in the
order a reader meets them, on one lab that the README's own `vnetctl lab up` brings up,
with nothing reset between them; each exits as its comment documents (`(exit N)`, else
0). Where test_docs_examples runs each example alone on fresh hosts, this finds what a
reader finds: an example that fails after the one above it.

The lab is the README's `lab` under a name and subnet from the allocator (a user's own
lab may be up on this machine). The only things made for the examples are what a
reader has already: a file named by `-e @FILE`, and inventory/prod.yml (a copy of the
lab's, standing in for the reader's production inventory).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_examples import Example, readme_examples
from doc_workspace import INVENTORY, NOT_RUN, Workspace
from vnetctl_process import ROOT

from tests.labhosts import lab_skip_reason
from vnetctl.lab import allocate_lab, lab_down

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Iterator[Workspace]:
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    reserved = allocate_lab("rd", hosts=3)  # brought up by the README's `lab up`
    try:
        yield Workspace(tmp_path_factory.mktemp("readme"), reserved.name)
    finally:
        lab_down(reserved.name)


def readers_files(example: Example, space: Workspace) -> None:
    for word in example.words():
        if word.startswith("@") and not (space.path / word[1:]).exists():
            (space.path / word[1:]).write_text("{}\n")
    prod = space.path / "inventory" / "prod.yml"
    if "inventory/prod.yml" in example.words() and not prod.exists():
        shutil.copy(space.path / INVENTORY, prod)


def test_the_readme_runs_top_to_bottom(space: Workspace):
    examples = [
        Example(command, comment, [source])
        for source, command, comment in readme_examples(ROOT / "README.md")
        if command not in NOT_RUN
    ]
    assert [e.words()[:3] for e in examples[:1]] == [["vnetctl", "lab", "up"]], (
        "the README's first runnable command brings the lab up"
    )
    for example in examples:
        readers_files(example, space)
        space.check(example, space.run(example))
    assert not Path(space.path / INVENTORY).exists(), "the README ends with `lab down`"
