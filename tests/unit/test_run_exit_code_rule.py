"""`vnetctl run`'s exit code follows the rule `vnetctl drift` does, for alerting: what
needs acting on on a reachable host (a failure; with --check --detailed-exitcode, a
change) is 2 whatever else happened; unreachable hosts alone are 3."""

from __future__ import annotations

import pytest

from vnetctl.runner.results import ExitCode, RunResult, Status, TaskResult


def outcome(statuses: dict[str, Status], unreachable=(), detailed=False) -> RunResult:
    results = [TaskResult(h, "p", 0, "t", "link", s) for h, s in statuses.items()]
    results += [TaskResult(h, "p", -1, "connect", "-", Status.UNREACHABLE) for h in unreachable]
    return RunResult(results, unreachable={h: "connection refused" for h in unreachable},
                     hosts=[*statuses, *unreachable], detailed_exitcode=detailed)  # fmt: skip


@pytest.mark.parametrize(("statuses", "unreachable", "detailed", "code"), [
    ({"h1": Status.FAILED}, ["h2"], False, ExitCode.HOST_FAILED),
    ({"h1": Status.UNKNOWN}, ["h2"], False, ExitCode.HOST_FAILED),
    ({"h1": Status.OK}, ["h2"], False, ExitCode.HOST_UNREACHABLE),
    ({"h1": Status.CHANGED}, ["h2"], False, ExitCode.HOST_UNREACHABLE),
    ({"h1": Status.CHANGED}, ["h2"], True, ExitCode.HOST_FAILED),
    ({"h1": Status.CHANGED}, [], True, ExitCode.HOST_FAILED),
    ({"h1": Status.CHANGED}, [], False, ExitCode.SUCCESS),
    ({"h1": Status.OK}, [], True, ExitCode.SUCCESS),
])  # fmt: skip
def test_a_failure_or_detailed_change_on_a_reached_host_is_2_unreachable_alone_3(
    statuses, unreachable, detailed, code
):
    assert outcome(statuses, unreachable, detailed).exit_code() == code
