"""Connection retry policy, and what the console shows on small and large fleets."""

from __future__ import annotations

import asyncio
import errno
import io

import pytest
from rich.console import Console

from vnetctl.output.console import QUIET_FLEET, ConsoleReporter
from vnetctl.runner.results import RunResult, Status, TaskResult
from vnetctl.transport.base import AuthFailed, HostKeyRefused
from vnetctl.transport.retry import is_transient, with_retries


@pytest.mark.parametrize(
    "exc, transient",
    [
        (ConnectionRefusedError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (OSError(errno.EHOSTUNREACH, "no route"), True),
        (AuthFailed("denied"), False),
        (HostKeyRefused("mismatch"), False),
        (OSError(errno.ENOENT, "no such file"), False),
        (ValueError("bug"), False),
    ],
)
def test_only_network_errors_are_transient(exc, transient):
    assert is_transient(exc) is transient


def test_retries_transient_failures_then_gives_up_and_never_retries_auth():
    calls = []

    async def refused():
        calls.append(1)
        raise ConnectionRefusedError()

    async def denied():
        calls.append(1)
        raise AuthFailed("denied")

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(with_retries(refused, retries=2))
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(AuthFailed):
        asyncio.run(with_retries(denied, retries=5))
    assert len(calls) == 1


def result(host, status, changes=()):
    return TaskResult(
        host,
        "p",
        0,
        "VM bridge",
        "linux_bridge",
        status,
        msg="changed: mtu" if changes else "",
        changes=list(changes),
    )


def reporter(show_diff=False):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=120)
    return ConsoleReporter(console, show_diff=show_diff), out


def test_small_fleet_prints_every_result_and_diffs():
    rep, out = reporter(show_diff=True)
    rep.play_started("VM networks", ["h1", "h2"], 1)
    rep.task_done(result("h1", Status.OK))
    rep.task_done(result("h2", Status.CHANGED, [{"field": "mtu", "before": 1500, "after": 9000}]))
    text = out.getvalue()
    assert "ok: [h1] VM bridge" in text
    assert "changed: [h2] VM bridge - changed: mtu" in text and "mtu: 1500 -> 9000" in text


def test_play_names_print_as_written_even_when_they_look_like_markup():
    rep, out = reporter()
    rep.play_started("network of h1, h2", ["h1", "h2"], 3)
    rep.play_started("[bold]x[/bold]", ["h1"], 1)
    text = out.getvalue()
    assert "PLAY [network of h1, h2] (2 hosts, 3 tasks)" in text
    assert "PLAY [[bold]x[/bold]] (1 host, 1 task)" in text  # counted in words


def test_large_fleet_shows_only_what_needs_attention_and_a_recap():
    hosts = [f"h{i}" for i in range(QUIET_FLEET + 5)]
    rep, out = reporter()
    rep.play_started("VM networks", hosts, 1)
    run = RunResult(hosts=hosts)
    for host in hosts:
        status = Status.FAILED if host == "h3" else Status.OK
        run.results.append(result(host, status))
        rep.task_done(run.results[-1])
    run.unreachable = {}
    rep.recap(run)
    text = out.getvalue()
    assert "ok: [h1]" not in text and "failed: [h3] VM bridge" in text
    assert f"{len(hosts)} hosts: {len(hosts) - 1} ok, 0 changed, 1 failed" in text


def test_one_host_one_task_and_its_recap_read_as_words():
    rep, out = reporter()
    rep.play_started("VM networks", ["h1"], 1)
    run = RunResult(hosts=["h1"], results=[result("h1", Status.OK)])
    rep.task_done(run.results[0])
    rep.recap(run)
    text = out.getvalue()
    assert "(1 host, 1 task)" in text and "1 host: 1 ok, 0 changed, 0 failed" in text
    assert "1 hosts" not in text and "1 tasks" not in text
