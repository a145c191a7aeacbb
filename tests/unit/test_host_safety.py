"""The host library's defences: interface and mesh names, the one writer of batch lines,
the check every line passes before a process reads it, command timeouts, and honest
rollbacks."""

from __future__ import annotations

import time

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
host = CATALOG.host_lib()


def test_a_command_that_hangs_is_killed_and_named():
    started = time.monotonic()
    with pytest.raises(host.ModuleError) as err:
        host.run(["sleep", "30"], timeout=0.3)
    assert time.monotonic() - started < 10
    assert str(err.value) == "sleep 30 did not finish within 0.3 s and was killed"
    assert host.RUN_TIMEOUT_S == 120  # the default for every module command
