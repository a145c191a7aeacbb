"""`serial`, `max_fail_percentage` and `health_gates` as a play declares them: the batch
sizes for 1, 7 and 100 hosts in every form (the values ansible-playbook 2.19 gives for
the same `serial`, read off `ansible_play_batch`), the failure budget, and what is
refused when the playbook loads."""

from __future__ import annotations

import pytest
from fake_catalog import CATALOG as MODULES

from vnetctl.errors import InputError
from vnetctl.fleet.gates import check_declared
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.serial import batch_sizes, batches, over_budget

CATALOG = {**MODULES, "vxlan_mesh": {"name": {"type": "str", "required": True}}}

SIZES = [
    # serial as written      1 host  7 hosts        100 hosts
    (3,                      [1],    [3, 3, 1],     [3] * 33 + [1]),
    ("30%",                  [1],    [2, 2, 2, 1],  [30, 30, 30, 10]),
    ("1%",                   [1],    [1] * 7,       [1] * 100),
    ("100%",                 [1],    [7],           [100]),
    ([1, "50%"],             [1],    [1, 3, 3],     [1, 50, 49]),
    ([1, "10%", "100%"],     [1],    [1, 1, 5],     [1, 10, 89]),
    ([2, 2, 10],             [1],    [2, 2, 3],     [2, 2] + [10] * 9 + [6]),
    (None,                   [1],    [7],           [100]),
]  # fmt: skip


def load(tmp_path, play: str):
    book = tmp_path / "book.yml"
    book.write_text("- hosts: all\n" + play + "  tasks:\n    - link: {name: eth1}\n")
    (loaded,) = load_playbook(book, CATALOG)
    check_declared([loaded])  # as the commands do: the gates say which names exist
    return loaded


@pytest.mark.parametrize(("serial", "one", "seven", "hundred"), SIZES, ids=str)
def test_batch_sizes_for_1_7_and_100_hosts(tmp_path, serial, one, seven, hundred):
    written = "" if serial is None else f"  serial: {serial!r}\n".replace("'", '"')
    play = load(tmp_path, written)
    for hosts, expected in ((1, one), (7, seven), (100, hundred)):
        assert batch_sizes(play.serial, hosts) == expected


def test_a_percentage_is_computed_as_ansible_computes_it():
    """58% of 50 hosts is 28 for ansible-playbook (floating point), not 29."""
    assert batch_sizes(["58%"], 50) == [28, 22]


def test_batches_keep_inventory_order():
    hosts = [f"h{i}" for i in range(1, 8)]
    assert batches(hosts, [1, "50%"]) == [["h1"], ["h2", "h3", "h4"], ["h5", "h6", "h7"]]
    assert batches([], [1]) == []


@pytest.mark.parametrize(
    ("failed", "batch", "limit", "stops"),
    [
        (1, 3, 33, True),  # 33.3% > 33: as ansible-playbook, which aborts
        (1, 4, 25, False),  # exactly 25% is not more than 25%
        (0, 4, 0, False),
        (1, 10, 0, True),
        (5, 10, 50, False),
        (6, 10, 50, True),
        (10, 10, None, False),  # no budget declared
    ],
)
def test_the_failure_budget_is_strictly_exceeded(failed, batch, limit, stops):
    assert over_budget(failed, batch, limit) is stops


def test_rollout_keywords_load(tmp_path):
    play = load(
        tmp_path,
        "  serial: [1, '25%']\n  max_fail_percentage: '20%'\n  health_gates:\n"
        "    - reachable\n    - command: ip link show eth1\n      timeout: 2m\n",
    )
    assert play.serial == [1, "25%"] and play.max_fail_percentage == 20.0
    assert [(g.kind, g.command, g.timeout) for g in play.health_gates] == [
        ("reachable", None, 60.0),
        ("command", "ip link show eth1", 120.0),
    ]
    assert play.rolls_out and not load(tmp_path, "").rolls_out


@pytest.mark.parametrize(
    ("play", "expected"),
    [
        ("  serial: 0\n", "book.yml:2: play 'all': serial: 0 is no batch size (Ansible reads "
         "it as every host at once: leave serial out for that)"),
        ("  serial: [1, '0%']\n", "book.yml:2: play 'all': serial: '0%' is no batch size "
         "(Ansible reads it as every host at once: leave serial out for that)"),
        ("  serial:\n    - 1\n    - -2\n", "book.yml:4: play 'all': serial: expected a "
         "number of hosts (3), a percentage of them ('30%') or a list of these, got -2"),
        ("  serial: '150%'\n", "book.yml:2: play 'all': serial: '150%' is more than every "
         "host"),
        ("  serial: []\n", "book.yml:2: play 'all': serial: an empty list has no batch size"),
        ("  serial: 1.5\n", "book.yml:2: play 'all': serial: expected a number of hosts (3), "
         "a percentage of them ('30%') or a list of these, got number 1.5"),
        ("  max_fail_percentage: 120\n", "book.yml:2: play 'all': max_fail_percentage: 120 "
         "is outside 0..100"),
        ("  max_fail_percentage: many\n", "book.yml:2: play 'all': max_fail_percentage: "
         "expected a percentage (0..100, e.g. 20 or '20%'), got 'many'"),
        ("  health_gates: reachable\n", "book.yml:2: play 'all': health_gates must be a list "
         "of checks: a gate's name (reachable, mesh_check, ...) or {command: CMD, timeout: 60s}"),
        ("  health_gates: [pingable]\n", "book.yml:2: play 'all': unknown health gate "
         "'pingable': a gate is one of reachable, mesh_check, command"),
        ("  health_gates:\n    - command: 'true'\n      retries: 3\n", "book.yml:4: play "
         "'all': health gate command: unknown key 'retries' (it has command and timeout)"),
        ("  health_gates:\n    - command: 'true'\n      timeout: 2h\n", "book.yml:4: play "
         "'all': health gate timeout: '2h' is outside 1s..1h"),
        ("  health_gates: [mesh_check]\n", "book.yml:2: play 'all': health gate mesh_check: "
         "this play declares no vxlan_mesh task, so the gate has nothing to check"),
        ("  health_gates: [{reachable: true}]\n", "book.yml:2: play 'all': unknown health "
         "gate 'reachable': a gate is a name or {command: CMD, timeout: 60s}"),
    ],
)  # fmt: skip
def test_bad_rollout_keywords_are_refused_with_file_and_line(tmp_path, play, expected):
    with pytest.raises(InputError) as info:
        load(tmp_path, play)
    assert str(info.value).replace(str(tmp_path / "book.yml"), "book.yml") == expected


def test_the_commands_refuse_an_unknown_gate_before_any_host(tmp_path, capsys):
    from vnetctl.cli.main import main  # noqa: PLC0415

    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n")
    (tmp_path / "book.yml").write_text(
        "- hosts: all\n  health_gates: [pingable]\n  tasks:\n    - link: {name: eth1}\n"
    )
    argv = ["run", str(tmp_path / "book.yml"), "-i", str(tmp_path / "hosts.yml"), "--list-tasks"]
    assert main(argv) == 1
    assert "book.yml:2: play 'all': unknown health gate 'pingable'" in capsys.readouterr().err
