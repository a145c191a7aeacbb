"""Options that talk to hosts are bounded: a typo cannot ask for 0 forks or 10^9 retries."""

from __future__ import annotations

import pytest

from vnetctl.cli.main import parse_args


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--forks", "0", "0 is outside 1..1000"),
        ("--forks", "-1", "-1 is outside 1..1000"),
        ("--forks", "100000", "100000 is outside 1..1000"),
        ("--retries", "-3", "-3 is outside 0..10"),
        ("--retries", "1000000", "1000000 is outside 0..10"),
        ("--forks", "many", "expected an integer, got 'many'"),
        ("--timeout", "0", "0 is outside 0..7 days"),
        ("--timeout", "soon", "expected a duration (e.g. 90, 15m, 1h30m), got 'soon'"),
        ("--lock-wait", "-5", "-5 is outside 0..7 days"),
    ],
)
def test_out_of_range_values_are_refused(capsys, option, value, message):
    with pytest.raises(SystemExit):
        parse_args(["run", "site.yml", "-i", "inv.yml", option, value])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600)])
def test_times_take_units(text, seconds):
    assert parse_args(["run", "p.yml", "-i", "i.yml", "--timeout", text]).timeout == seconds
