"""A host that cannot be reached is said in a sentence naming host:port, by both
transports: not `[Errno 113] Connect call failed ('10.0.0.5', 22)`."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from vnetctl.transport import base
from vnetctl.transport.asyncssh_module import asyncssh  # imported quietly (DSA warnings)
from vnetctl.transport.asyncssh_transport import AsyncsshTransport
from vnetctl.transport.paramiko_transport import ParamikoTransport, paramiko

TARGET = base.Target(name="kvm1", address="10.0.0.5", port=2222, connect_timeout=1)
CASES = [
    (OSError(errno.EHOSTUNREACH, "Connect call failed ('10.0.0.5', 2222)"),
     "no route to 10.0.0.5:2222: the host is down or not on this network", True),
    (OSError(errno.ENETUNREACH, "Network is unreachable"),
     "network unreachable: this machine has no route to 10.0.0.5:2222", False),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
     "10.0.0.5:2222 refused the connection: no SSH server listens on that port", True),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
     "cannot resolve 10.0.0.5: Name or service not known", False),
    (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 2222), "
             "[Errno 111] Connect call failed ('127.0.0.1', 2222)"),
     "10.0.0.5:2222 refused the connection", False),
    (OSError(errno.EPERM, "Operation not permitted"),
     "cannot connect to 10.0.0.5:2222: Operation not permitted", False),
]  # fmt: skip


@pytest.mark.parametrize(("error", "sentence", "retried"), CASES)
def test_asyncssh_says_which_host_and_port_and_why(monkeypatch, error, sentence, retried):
    async def connect(*args, **kwargs):
        raise error

    monkeypatch.setattr(asyncssh, "connect", connect)
    options = base.TransportOptions(retries=1)
    monkeypatch.setattr("vnetctl.transport.retry.tenacity.wait_exponential_jitter",
                        lambda **kw: (lambda state: 0))  # fmt: skip
    with pytest.raises(base.Unreachable) as info:
        asyncio.run(AsyncsshTransport().connect(TARGET, options))
    message = str(info.value)
    assert message.startswith(sentence) and "Errno" not in message
    assert message.endswith(" (2 attempts)") == retried


def test_paramiko_gives_back_the_socket_error_it_wraps(monkeypatch):
    def connect(self, **kwargs):
        inner = OSError(errno.EHOSTUNREACH, "No route to host")
        raise paramiko.ssh_exception.NoValidConnectionsError({("10.0.0.5", 2222): inner})

    monkeypatch.setattr(paramiko.SSHClient, "connect", connect)
    monkeypatch.setattr("vnetctl.transport.retry.tenacity.wait_exponential_jitter",
                        lambda **kw: (lambda state: 0))  # fmt: skip
    with pytest.raises(base.Unreachable) as info:
        asyncio.run(ParamikoTransport().connect(TARGET, base.TransportOptions(retries=0)))
    assert str(info.value).startswith("no route to 10.0.0.5:2222: the host is down")
