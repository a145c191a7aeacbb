"""Host patterns in `hosts:` and --limit, subscripts included (`kvm[0]`, `kvm[-1]`,
`kvm[0:2]`, `kvm[1:]`), select the hosts ansible-playbook --list-hosts selects
(ansible-core 2.19) on the same inventory. vnetctl lists them in inventory order, Ansible
in pattern order: the sets are compared."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.real_ansible import clean_env, list_hosts, listed_hosts, needs_ansible
from tests.unit.test_patterns import FLEET
from vnetctl.cli.main import main
from vnetctl.errors import InputError
from vnetctl.inventory.loader import build_inventory

PATTERNS = [
    "all", "*", "kvm", "storage", "kvm[0]", "kvm[-1]", "kvm[0:2]", "kvm[1:]", "storage[1]",
    "storage[0:1]", "all[0:2]", "all[-1]", "all[3:]", "rack1[0]:rack2[-1]",
    "kvm:&storage[0:1]", "kvm[0:2]:!rack1-h2", "~rack[12]-h1$", "~^n", "rack*[0]",
    "kvm:!storage", "kvm:&storage", "rack2:mgmt1", "rack?-h1", "rack*-h[!1]", "empty[0]",
    "*[1]", "storage[5:9]", "kvm,storage[-1]",
]  # fmt: skip
LIMITS = [["kvm[0:1]"], ["all:!storage[0]"], ["~.*h2$"], ["@limits.txt"]]


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "fleet.yml").write_text(yaml.safe_dump(FLEET))
    plays = [{"hosts": p, "gather_facts": False, "tasks": []} for p in PATTERNS]
    (tmp_path / "patterns.yml").write_text(yaml.safe_dump(plays))
    (tmp_path / "all.yml").write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False}]))
    (tmp_path / "limits.txt").write_text("rack1-h1\nstorage[0]\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def ours(capsys, *argv: str) -> list[list[str]]:
    assert main(["run", *argv, "--list-hosts"]) == 0, capsys.readouterr().err
    return [sorted(play) for play in listed_hosts(capsys.readouterr().out)]


def theirs(project: Path, *argv: str) -> list[list[str]]:
    got = list_hosts(project / argv[0], *argv[1:], cwd=project, env=clean_env(project))
    return [sorted(play) for play in got]


@needs_ansible
def test_play_patterns_select_what_ansible_selects(project, capsys):
    argv = ("patterns.yml", "-i", "fleet.yml")
    mine, real = ours(capsys, *argv), theirs(project, *argv)
    assert len(mine) == len(PATTERNS)
    for pattern, a, b in zip(PATTERNS, mine, real, strict=True):
        assert a == b, pattern


@needs_ansible
@pytest.mark.parametrize("limit", LIMITS, ids=" ".join)
def test_limits_select_what_ansible_selects(project, capsys, limit):
    argv = ("all.yml", "-i", "fleet.yml", "--limit", *limit)
    assert ours(capsys, *argv) == theirs(project, *argv)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("kvm[7]", "host pattern 'kvm[7]': kvm has 4 hosts, no [7]"),
        ("kvm[0-2]", "write [0:2] (Ansible removed [x-y])"),
        ("nope[0]", "unknown host pattern 'nope'"),
    ],
)
def test_a_subscript_that_selects_nothing_it_could_is_bad_input(pattern, words):
    inventory = build_inventory(FLEET, "fleet.yml")
    with pytest.raises(InputError) as info:
        inventory.select(pattern)
    assert words in str(info.value)
