"""Issue 31 on labs of their own: an OVS mirror whose name no command may hold never
breaks a run, and `lab down` goes on past links the kernel removes while it works and
leaves nothing behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, lab_down, lab_up, load_state, netns
from vnetctl.lab.lab import allocate_lab
from vnetctl.lab.state import state_dir

pytestmark = pytest.mark.lab


def sh(lab, host: str, script: str) -> str:
    done = host_exec(lab.name, host, ["sh", "-c", script])
    assert done.returncode == 0, f"{host}: {script}: {done.stderr}"
    return done.stdout


def bridge_play(path: Path, host: str, mirror: str) -> str:
    bridge = {
        "name": "br-m",
        "ports": [{"name": "mport", "type": "internal"}],
        "mirrors": [{"name": mirror, "select_all": True, "output_port": "mport"}],
    }
    path.write_text(yaml.safe_dump([{"hosts": host, "tasks": [{"ovs_bridge": bridge}]}]))
    return str(path)


@pytest.fixture(scope="module")
def ovs_lab(lab_required, tmp_path_factory):
    with own_lab("mr", tmp_path_factory.mktemp("mr"), hosts=1, ovs=True) as state:
        yield state


def run(capsys, lab, book: str) -> tuple[int, dict]:
    code = main(["run", book, "-i", str(lab.inventory_path), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_mirror_named_dashes_is_refused_and_one_left_on_a_host_is_removed(
    ovs_lab, tmp_path, capsys
):
    host = ovs_lab.host_names[0]
    assert main(["run", bridge_play(tmp_path / "bad.yml", host, "--"), "-i",
                 str(ovs_lab.inventory_path)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "bad.yml:" in err and "'--' is not a valid name" in err
    good = bridge_play(tmp_path / "good.yml", host, "span")
    code, doc = run(capsys, ovs_lab, good)
    assert code == 0, doc
    # what an earlier vnetctl (or a hand) left: a mirror ovs-vsctl cannot be told by name
    sh(ovs_lab, host, "ovs-vsctl -- --id=@m create mirror name=-- select_all=true "
                      "-- add bridge br-m mirrors @m")  # fmt: skip
    code, doc = run(capsys, ovs_lab, good)
    assert code == 0, doc
    assert doc["stats"][host] == {"changed": 1}
    names = sh(ovs_lab, host, "ovs-vsctl --bare --columns=name list mirror").split()
    assert names == ["span"]
    code, doc = run(capsys, ovs_lab, good)
    assert code == 0 and doc["stats"][host] == {"ok": 1}, doc


def test_lab_down_goes_on_past_links_gone_meanwhile_and_leaves_nothing(
    lab_required, tmp_path, monkeypatch
):
    """A namespace kept alive (here by an open descriptor) keeps its root-side links
    after `netns del`; it is let go just as lab down reads which links are left, so
    those links vanish under it: `Command failed -:2` stopped the batch, and the
    bridges after it were left behind until a second lab down."""
    reserved = allocate_lab("ld", 2)
    state = lab_up(reserved.name, hosts=2, inventory_path=tmp_path / "lab.yml")
    held = state.hosts[0]
    holder = [os.open(netns.netns_path(held.namespace), os.O_RDONLY)]
    real, reads = netns.existing_links, []

    def links_as_read_before_the_kernel_removed_some() -> set[str]:
        found = real()
        if holder and not os.path.exists(netns.netns_path(held.namespace)):
            reads.append(found)
            if len(reads) == 2:  # the list the deletions are made from
                os.close(holder.pop())
                wait_until(lambda: not set(held.root_links) & real(), 30, "the links gone")
        return found

    monkeypatch.setattr(netns, "NAMESPACE_TEARDOWN_WAIT", 0.0)
    monkeypatch.setattr(netns, "existing_links", links_as_read_before_the_kernel_removed_some)
    try:
        lab_down(reserved.name)
    finally:
        for fd in holder:
            os.close(fd)
        monkeypatch.undo()
        left_behind = load_state(reserved.name) is not None
        lab_down(reserved.name)  # whatever the first left, for the next test's sake
    assert len(reads) >= 2 and set(held.root_links) <= reads[1]
    assert not left_behind and not state_dir(reserved.name).exists()
    made = {*state.bridges, *(link for h in state.hosts for link in h.root_links)}
    assert not made & netns.existing_links()
    assert not {h.namespace for h in state.hosts} & netns.existing_namespaces()
