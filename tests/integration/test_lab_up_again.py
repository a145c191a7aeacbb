"""`lab up` on an existing lab: it keeps the subnet it was made with (as it keeps the
inventory path and Open vSwitch), and says "rebuilding" only of hosts it had made."""

from __future__ import annotations

import subprocess

import pytest

from vnetctl.cli.main import main
from vnetctl.lab import lab_status, load_state

pytestmark = pytest.mark.lab


def lab_up(capsys, name: str, *args: str) -> tuple[int, str, str]:
    code = main(["lab", "up", "--name", name, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_up_again_without_subnet_keeps_the_labs_own(lab3, capsys):
    code, out, err = lab_up(capsys, lab3.name, "--hosts", "3")
    assert code == 0, err
    assert load_state(lab3.name).subnet == lab3.subnet
    assert f"lab {lab3.name}: 3 hosts up" in out


def test_growing_rebuilds_nothing_and_counts_in_words(lab3, capsys):
    try:
        code, out, err = lab_up(capsys, lab3.name, "--hosts", "4")
        assert code == 0, err
        assert "rebuilding" not in err  # h4 never existed: it is new, not lost
        assert f"lab {lab3.name}: 4 hosts up" in out
        state = load_state(lab3.name)
        assert state.subnet == lab3.subnet and len(state.hosts) == 4
    finally:
        code, out, err = lab_up(capsys, lab3.name, "--hosts", "3")
    assert code == 0 and "removing 1 host beyond 3" in err, err
    assert lab_status(lab3.name).healthy


def test_a_lost_namespace_is_rebuilt_and_said_once(lab3, capsys):
    lost = lab3.hosts[2]
    subprocess.run(["ip", "netns", "del", lost.namespace], check=True)
    code, out, err = lab_up(capsys, lab3.name, "--hosts", "3")
    assert code == 0, err
    assert err.count("rebuilding 1 host whose namespace is missing") == 1
    assert lab_status(lab3.name).healthy
