"""Scheduling drift checks: intervals, the foreground loop, systemd units and cron lines."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from vnetctl.cli.main import main
from vnetctl.drift import schedule
from vnetctl.errors import InputError

ARGV = ["/usr/bin/true", "drift", "/srv/site.yml", "-i", "/srv/inv 1.yml"]


@pytest.mark.parametrize(
    "text, seconds",
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("1h30m", 5400), ("1.5m", 90)],
)
def test_intervals(text, seconds):
    assert schedule.parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["15", "m", "15x", "5s", "1h 30m", "", "10.5s"])
def test_bad_intervals_say_what_was_expected(text):
    with pytest.raises(InputError, match="interval"):
        schedule.parse_interval(text)


class FakeClock:
    def __init__(self, run_time: float):
        self.now, self.run_time, self.waits = 0.0, run_time, []

    def job(self) -> int:
        self.now += self.run_time
        return 2

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def loop(clock: FakeClock, **kw) -> int:
    stop = threading.Event()
    stop.wait = lambda timeout: clock.wait(timeout)  # type: ignore[method-assign]
    return schedule.run_every(900, clock.job, stop=stop, clock=lambda: clock.now, **kw)


def test_the_loop_is_bounded_jittered_and_measured_from_each_start():
    clock = FakeClock(run_time=100)
    assert loop(clock, count=3, rand=lambda: 1.0) == 2
    assert clock.waits == pytest.approx([890.0, 890.0])  # 900 + 10% jitter - 100 s of work
    low = FakeClock(run_time=0)
    loop(low, count=2, rand=lambda: 0.0)
    assert low.waits == pytest.approx([810.0])


def test_an_overrunning_check_starts_the_next_at_once_and_says_so():
    clock, said = FakeClock(run_time=1000), []
    loop(clock, count=2, rand=lambda: 0.5, progress=said.append)
    assert clock.waits == [] and "took longer" in said[0]


def test_a_stop_request_ends_the_loop_after_the_current_check():
    stop, runs = threading.Event(), []

    def job() -> int:
        runs.append(1)
        stop.set()
        return 0

    assert schedule.run_every(900, job, stop=stop) == 0 and runs == [1]


def parse_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_string(text)
    return parser


def test_systemd_units(tmp_path):
    units = schedule.systemd_units("site", ARGV, 900, workdir=Path("/srv"))
    service = parse_unit(units["vnetctl-drift-site.service"])
    timer = parse_unit(units["vnetctl-drift-site.timer"])
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["SuccessExitStatus"] == "2"
    assert service["Service"]["ExecStart"].endswith('-i "/srv/inv 1.yml"')
    assert timer["Timer"]["OnUnitActiveSec"] == "900s"
    assert timer["Timer"]["RandomizedDelaySec"] == "90s"
    assert timer["Install"]["WantedBy"] == "timers.target"
    if shutil.which("systemd-analyze"):
        for name, text in units.items():
            (tmp_path / name).write_text(text)
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", *map(str, tmp_path.iterdir())],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "seconds, expected",
    [(60, "* * * * *"), (900, "*/15 * * * *"), (7200, "0 */2 * * *"), (86400, "0 0 * * *")],
)
def test_cron_schedules(seconds, expected):
    assert schedule.cron_schedule(seconds) == expected


def test_cron_refuses_what_it_cannot_express():
    with pytest.raises(InputError, match="cron cannot"):
        schedule.cron_schedule(7 * 60)


def test_cron_line_is_a_complete_cron_d_entry():
    text = schedule.cron_text("site", ARGV, 900, workdir=Path("/srv"), user="root")
    line = [x for x in text.splitlines() if x and not x.startswith("#") and "=" not in x[:6]]
    fields = line[0].split(None, 6)
    assert fields[:6] == ["*/15", "*", "*", "*", "*", "root"]
    assert (
        fields[6].startswith("cd /srv && /usr/bin/true drift") and "'/srv/inv 1.yml'" in fields[6]
    )


def test_install_and_remove_through_the_cli_leave_nothing_behind(tmp_path, capsys):
    (tmp_path / "site.yml").write_text("[]\n")
    (tmp_path / "inv.yml").write_text("all: {}\n")
    check = [str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.yml")]
    units, cron = tmp_path / "units", tmp_path / "cron"
    report = f"html={tmp_path}/d.html"
    assert main(["drift", "schedule", "install", "--systemd", "--name", "site",
                 "--unit-dir", str(units), *check, "--report", report]) == 0  # fmt: skip
    service = (units / "vnetctl-drift-site.service").read_text()
    assert f"--report html={tmp_path}/d.html" in service and "drift" in service
    assert main(["drift", "schedule", "install", "--cron", "--name", "site", "--every", "1h",
                 "--cron-dir", str(cron), *check]) == 0  # fmt: skip
    assert (cron / "vnetctl-drift-site").read_text().count("0 */1 * * * root") == 1
    assert main(["drift", "schedule", "remove", "--systemd", "--name", "site",
                 "--unit-dir", str(units)]) == 0  # fmt: skip
    assert main(["drift", "schedule", "remove", "--cron", "--name", "site",
                 "--cron-dir", str(cron)]) == 0  # fmt: skip
    assert list(units.iterdir()) == [] and list(cron.iterdir()) == []
    assert main(["drift", "schedule", "install", "--cron", "--name", "Bad Name",
                 "--cron-dir", str(cron), *check]) == 1  # fmt: skip
