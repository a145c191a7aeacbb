"""Connection and vnetctl variables follow the README's precedence table like every
other variable: inventory < play vars < vars_files < role vars < extra vars (`-e`), a
setting named at a higher level by any of its names (`ansible_port` or `vnetctl_port`)
winning over every name below; durations read alike everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.extra_vars import parse_extra_vars
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook

CATALOG = {"debug": {"msg": {"type": "raw"}}}
INVENTORY = """\
[kvm]
kvm1 ansible_host=10.0.0.1 vnetctl_port=22 vnetctl_timeout=15m
kvm2 ansible_host=10.0.0.2
"""


def run_context(tmp_path: Path, book: str, extra: list[str] = ()) -> RunContext:
    (tmp_path / "hosts").write_text(INVENTORY)
    (tmp_path / "book.yml").write_text(book)
    inventory = load_inventory(tmp_path / "hosts")
    extra_vars = parse_extra_vars(list(extra))
    plans = plan_playbook(
        load_playbook(tmp_path / "book.yml", CATALOG), inventory, CATALOG, extra_vars=extra_vars
    )
    run = RunContext(CATALOG, inventory, extra_vars=extra_vars)
    run.take_plays(plans)
    return run


TASKS = "  tasks: [{debug: {msg: hi}}]\n"
PLAY = "- hosts: kvm\n" + TASKS


def test_inventory_alone(tmp_path):
    run = run_context(tmp_path, PLAY)
    assert (run.spec("kvm1").port, run.spec("kvm1").play_timeout) == (22, 900.0)
    assert run.spec("kvm2").port is None


def test_extra_vars_beat_the_inventory_whatever_the_name(tmp_path):
    extra = ["ansible_port=2299 vnetctl_persist=networkd vnetctl_timeout=90s"]
    spec = run_context(tmp_path, PLAY, extra).spec("kvm1")
    assert (spec.port, spec.persist, spec.play_timeout) == (2299, "networkd", 90.0)


def test_play_vars_beat_the_inventory_and_extra_vars_beat_play_vars(tmp_path):
    book = "- hosts: kvm\n  vars: {ansible_port: 2299, ansible_user: ops}\n" + TASKS
    run = run_context(tmp_path, book)
    assert (run.spec("kvm1").port, run.spec("kvm2").port) == (2299, 2299)
    assert run.spec("kvm1").user == "ops"
    run = run_context(tmp_path, book, ["vnetctl_port=2300"])
    assert run.spec("kvm1").port == 2300


def test_vars_files_and_templates_in_play_vars(tmp_path):
    (tmp_path / "conn.yml").write_text("ssh_port: 2201\nvnetctl_timeout: 2m\n")
    book = (
        "- hosts: kvm\n  vars: {ansible_port: '{{ ssh_port }}'}\n  vars_files: [conn.yml]\n" + TASKS
    )
    spec = run_context(tmp_path, book).spec("kvm2")
    assert (spec.port, spec.play_timeout) == (2201, 120.0)


def test_plays_that_reach_a_host_differently_are_refused(tmp_path):
    book = PLAY + "- hosts: kvm1\n  vars: {ansible_port: 2299}\n" + TASKS
    run = run_context(tmp_path, book)
    assert run.spec("kvm2").port is None  # in one play only
    with pytest.raises(InputError, match="connects differently"):
        run.spec("kvm1")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("ansible_port=ssh", "expected a port number"),
        ("vnetctl_timeout=soon", "or a duration"),
        ("vnetctl_persist=ifupdown", "is not one of networkd, none"),
    ],
)
def test_bad_extra_vars_are_refused_with_their_origin(tmp_path, words, message):
    with pytest.raises(InputError, match=message) as info:
        run_context(tmp_path, PLAY, [words]).spec("kvm1")
    assert str(info.value).startswith("-e")


def test_role_defaults_sit_below_the_inventory_and_above_the_user_flag(tmp_path):
    defaults = tmp_path / "roles" / "uplink" / "defaults"
    defaults.mkdir(parents=True)
    (defaults / "main.yml").write_text("ansible_port: 2201\nansible_user: fromrole\n")
    (tmp_path / "roles" / "uplink" / "tasks").mkdir()
    (tmp_path / "roles" / "uplink" / "tasks" / "main.yml").write_text("- debug: {msg: hi}\n")
    run = run_context(tmp_path, "- hosts: kvm\n  roles: [uplink]\n")
    run.cli_defaults = {"vnetctl_user": "fromflag"}
    kvm1, kvm2 = run.spec("kvm1"), run.spec("kvm2")
    assert (kvm1.port, kvm2.port) == (22, 2201)  # kvm1's inventory vnetctl_port wins
    assert kvm2.user == "fromrole"
    run = run_context(tmp_path, PLAY)
    run.cli_defaults = {"vnetctl_user": "fromflag"}
    assert run.spec("kvm2").user == "fromflag"
