"""The host's code cache on a real host (vnetctl.hostside.boot.Cache): the second play
on a host is sent digests instead of the code, with no exchange more, and a cached
file altered on the host is not run: asked for again (one exchange), and replaced."""

from __future__ import annotations

import base64
import json
import marshal
from pathlib import Path

import pytest

from tests.labhosts import own_lab
from vnetctl.catalog import Catalog
from vnetctl.cli.main import main
from vnetctl.hostside.boot import CACHE_DIR, digest
from vnetctl.lab import host_exec
from vnetctl.lab.relay_process import wait_settled
from vnetctl.runner.payload import MAGIC, _entry
from vnetctl.transport.asyncssh_transport import AsyncsshProcess

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "bench" / "workloads" / "ten_tasks.yml"
SECOND_PLAY_BYTES = 25_000  # stdin of the ten-task play to a host that has its code


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    # a relay (1 ms) counts each connection's bytes on the wire
    with own_lab("cc", tmp_path_factory.mktemp("cc"), hosts=1, rtt=1.0) as state:
        yield state


def run(lab, monkeypatch, capsys) -> tuple[int, int, dict]:
    """The ten-task play: (bytes written on the host's stdin, how many of those writes
    were not acknowledgements, the relay's entry for the run's connection)."""
    sent, exchanges = [], []
    write = AsyncsshProcess.write

    async def counted(self, data: str) -> None:
        sent.append(len(data.encode()))
        exchanges.append(set(data) != {"+"})
        await write(self, data)

    offset = lab.relay_log.stat().st_size if lab.relay_log.exists() else 0
    monkeypatch.setattr(AsyncsshProcess, "write", counted)
    code = main(["run", str(PLAYBOOK), "-i", str(lab.inventory_path), "--format", "json"])
    monkeypatch.undo()
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    closed = [e for e in wait_settled(lab.relay_log, offset) if e["event"] == "closed"]
    assert len(closed) == 1, closed
    return sum(sent), sum(exchanges), closed[0]


def host_bytes(lab, path: str) -> bytes:
    out = host_exec(lab.name, lab.host_names[0], ["base64", "-w0", path], check=True).stdout
    return base64.b64decode(out)


def test_the_second_play_sends_digests_and_an_altered_file_is_not_run(lab, monkeypatch, capsys):
    first, _, first_conn = run(lab, monkeypatch, capsys)
    second, writes, second_conn = run(lab, monkeypatch, capsys)
    assert second <= SECOND_PLAY_BYTES < first, (first, second)
    # the stdin, then acknowledgements only: no exchange more (the relay's turns move
    # with where the acknowledgements fall between the host's records: not counted here)
    assert writes == 1
    assert second_conn["up"] < first_conn["up"] / 4

    # every file in the host's cache has the digest it is named by
    host = lab.host_names[0]
    listing = host_exec(lab.name, host, ["ls", f"{CACHE_DIR}/{MAGIC}"], check=True).stdout.split()
    assert len(listing) > 10
    # a file this play uses: a lab host's /run is an overlay of this machine's, whose
    # cache may hold other runs' files (the first of the listing was one, never asked for)
    core = _entry("vnet_core", Catalog().host_lib_sources()["vnet_core"]).code_digest
    assert core in listing
    victim = f"{CACHE_DIR}/{MAGIC}/{core}"
    marker = "/run/vnetctl-altered-code-ran"
    evil = marshal.dumps(compile(f"open({marker!r}, 'w').close()", "<evil>", "exec"))
    host_exec(lab.name, host, ["sh", "-c", f"base64 -d > {victim}"],
              input=base64.b64encode(evil).decode(), check=True)  # fmt: skip
    assert host_bytes(lab, victim) == evil
    third, writes, _ = run(lab, monkeypatch, capsys)
    ran = host_exec(lab.name, host, ["test", "-e", marker])
    assert ran.returncode != 0, "the altered cache file was run"
    assert second < third < first / 4  # the one file sent again, not all of them
    assert writes == 2  # the one exchange to ask for it
    assert digest(host_bytes(lab, victim)) == core  # replaced by the real file
    fourth, _, _ = run(lab, monkeypatch, capsys)
    assert fourth <= SECOND_PLAY_BYTES
