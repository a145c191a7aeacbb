"""What each connection of the asyncssh transport costs the controller: the known_hosts
file parsed once while unchanged, the cheaper of OpenSSH's ciphers asked for first."""

from __future__ import annotations

import asyncio
import os

from vnetctl.transport import asyncssh_transport
from vnetctl.transport.asyncssh_module import asyncssh
from vnetctl.transport.base import Target, TransportOptions

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILDIc0rAFYrjdUmOkq3A0J09RxD/z+4b3R4MHE5EM2rT"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBEUxKvNg7nQpsh4MVB0Jq3nJev9SRUrYJrS6EcICEA1"


def test_known_hosts_is_parsed_once_while_the_file_is_unchanged(tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text(f"h1 {KEY_A}\n")
    one, two = (Target(n, address=n, known_hosts=str(path)) for n in ("h1", "h2"))
    first = asyncssh_transport._known_hosts(one)
    assert asyncssh_transport._known_hosts(two) is first
    with path.open("a") as out:  # a key accepted for a new host
        out.write(f"h2 {KEY_B}\n")
    os.utime(path, ns=(1, 1))  # whatever the clock's resolution, the file changed
    again = asyncssh_transport._known_hosts(two)
    assert again is not first and any(again.match("h2", "", None)[:3])
    missing = Target("h3", address="h3", known_hosts=str(tmp_path / "none"))
    assert not any(asyncssh_transport._known_hosts(missing).match("h3", "", None)[:3])


def test_aes_gcm_is_asked_for_first_and_the_usual_ciphers_stay_offered(monkeypatch):
    asked = {}

    async def connect(address, **kwargs):
        asked.update(kwargs)
        raise asyncssh.PermissionDenied("no")

    monkeypatch.setattr(asyncssh, "connect", connect)
    target = Target("h1", address="h1")
    try:
        asyncio.run(asyncssh_transport.AsyncsshTransport().connect(target, TransportOptions()))
    except Exception as exc:  # AuthFailed: the arguments are what is checked
        assert "authentication failed" in str(exc)
    algs = asked["encryption_algs"]
    assert algs[0] == "aes128-gcm@openssh.com" and "chacha20-poly1305@openssh.com" in algs
