"""Fixtures shared by the tests that run on the lab of real SSH hosts (docs/architecture.md)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.labhosts import lab_skip_reason, own_lab, ssh_argv
from vnetctl.lab import LabState, load_state, reset_hosts
from vnetctl.secrets import registry


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background of a script (`cmd &`, nohup) inherits SIGINT
    ignored, and so would every vnetctl it starts: the Ctrl-C tests (exit 130) would see
    a vnetctl that rightly keeps an inherited SIG_IGN. Ctrl-C is the suite's to decide:
    its own handler, which an exec'd child gets back as the default."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def own_controller_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What runs learn of hosts' code caches (vnetctl.runner.host_code) is the session's
    own: lab addresses are reused by other labs and sessions, whose hosts' caches differ."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="session")
def lab_required() -> None:
    """Skips the test, with the reason, where the lab cannot run."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab3(lab_required: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """The session's 3-host lab (`it` and a number), its inventory in a temporary
    directory; removed at the end."""
    with own_lab("it", tmp_path_factory.mktemp("lab"), hosts=3) as state:
        yield state


@pytest.fixture
def fresh_hosts(lab3: LabState) -> LabState:
    """lab3 with every sshd running and every host's network as `lab up` made it."""
    reset_hosts(lab3.name)
    return load_state(lab3.name) or lab3


@pytest.fixture
def lab_ssh() -> Callable[..., subprocess.CompletedProcess[str]]:
    """lab_ssh(state, host_name, command) -> CompletedProcess, over real OpenSSH."""

    def run(state: LabState, host: str, command: str) -> subprocess.CompletedProcess[str]:
        argv = ssh_argv(state, state.host(host).address, command)
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    return run


@pytest.fixture(autouse=True)
def _secrets_of_one_command() -> Iterator[None]:
    """Each test is one command: values a vault test decrypted (kept for the life of a
    real process) are no secrets of the next test."""
    yield
    registry().reset()
