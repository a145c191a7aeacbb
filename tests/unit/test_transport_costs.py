"""What each connection of the asyncssh transport costs the controller: the known_hosts
file parsed and the client key loaded once while unchanged, the cheaper of OpenSSH's
ciphers asked for first; the benchmark's floor alike."""

from __future__ import annotations

import asyncio
import os

from vnetctl.transport import asyncssh_module, asyncssh_transport
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
    algs = asked_for(monkeypatch, Target("h1", address="h1"))["encryption_algs"]
    assert algs[0] == "aes128-gcm@openssh.com" and "chacha20-poly1305@openssh.com" in algs


def asked_for(monkeypatch, target: Target) -> dict:
    """The arguments the transport gives asyncssh.connect for `target`."""
    asked = {}

    async def connect(address, **kwargs):
        asked.update(kwargs)
        raise asyncssh.PermissionDenied("no")

    monkeypatch.setattr(asyncssh, "connect", connect)
    try:
        asyncio.run(asyncssh_transport.AsyncsshTransport().connect(target, TransportOptions()))
    except Exception as exc:  # AuthFailed: the arguments are what is checked
        assert "authentication failed" in str(exc)
    return asked


def test_the_client_key_is_loaded_once_while_the_file_is_unchanged(tmp_path, monkeypatch):
    key = tmp_path / "id_ed25519"
    key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    one, two = (Target(n, address=n, key_file=str(key)) for n in ("h1", "h2"))
    first = asked_for(monkeypatch, one)["client_keys"]
    assert asked_for(monkeypatch, two)["client_keys"] is first  # loaded once, not per host
    assert len(first) == 1 and first[0].get_algorithm() == "ssh-ed25519"
    key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    os.utime(key, ns=(1, 1))
    assert asked_for(monkeypatch, two)["client_keys"] is not first  # a new key: read again
    key.write_text("not a key\n")  # asyncssh's own error when it connects, as before
    bad = Target("h3", address="h3", key_file=str(key))
    assert asked_for(monkeypatch, bad)["client_keys"] == [str(key)]


def test_a_certificate_renewed_beside_the_same_key_is_loaded_again(tmp_path, monkeypatch):
    loads = []
    monkeypatch.setattr(asyncssh, "load_keypairs", lambda paths: loads.append(paths) or [paths])
    key = tmp_path / "id_ed25519"
    key.write_text("a key\n")
    assert asyncssh_module.client_keys(str(key)) is asyncssh_module.client_keys(str(key))
    (tmp_path / "id_ed25519-cert.pub").write_text("a certificate\n")  # issued for the key
    asyncssh_module.client_keys(str(key))
    assert len(loads) == 2


def test_the_floor_parses_known_hosts_and_loads_the_key_once_for_all_hosts(tmp_path, monkeypatch):
    from bench import floor
    from vnetctl.inventory.connection import ConnectionSpec

    key, known = tmp_path / "id_ed25519", tmp_path / "known_hosts"
    key.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_private_key())
    known.write_text(f"h1 {KEY_A}\nh2 {KEY_B}\n")
    asked = []
    monkeypatch.setattr(asyncssh, "connect", lambda address, **kwargs: asked.append(kwargs))
    for name in ("h1", "h2"):
        floor.connect(ConnectionSpec(name, address=name, key_file=str(key),
                                     known_hosts=str(known)))  # fmt: skip
    assert asked[0]["known_hosts"] is asked[1]["known_hosts"]
    assert asked[0]["client_keys"] is asked[1]["client_keys"]
    assert asked[0]["encryption_algs"][0] == "aes128-gcm@openssh.com"
