"""The host's code cache (vnetctl.hostside.boot.Cache) and what the controller knows of it
(vnetctl.runner.host_code): real host processes on this machine, as a host starts them,
each with a cache directory of the test's own."""

from __future__ import annotations

import asyncio
import json
import marshal
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.unit.full_disk import FullDisk
from tests.unit.host_process import acknowledge, host_process
from vnetctl import hostlib
from vnetctl.catalog import Catalog
from vnetctl.hostside import boot
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.playbook.loader import load_playbook
from vnetctl.runner import host_code
from vnetctl.runner.host_code import HostCode, HostCodeStore
from vnetctl.runner.payload import MAGIC, LockSpec, answer, build_stdin, missing_line, unpack
from vnetctl.transport.base import ConnectionLost

ROOT = Path(__file__).resolve().parents[2]
# the benchmark's ten-task play (bench/workloads/ten_tasks.yml), as the runner sends it
TEN_TASKS = [
    {"index": i, "module": t.module, "args": dict(t.args)}
    for i, t in enumerate(load_playbook(ROOT / "bench/workloads/ten_tasks.yml", Catalog())[0].tasks)
]
CACHED_BOUND = 25_000  # bytes of stdin per host for the ten-task play once the host has its code


def play(tmp_path: Path, known: HostCode, tasks=TEN_TASKS, check=True):
    """One play on a host process here: (bytes of stdin, records). The controller's side
    as the runner does it: a {"need"} is answered, a {"cached"} learnt into `known`."""
    catalog = Catalog()
    stdin = build_stdin(catalog, tasks, check, LockSpec(wait=5, directory=str(tmp_path)),
                        known=known)  # fmt: skip
    sent, records = len(stdin.encode()), []
    with host_process(stdin) as proc:
        while not (records and records[-1].get("done")):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            record = json.loads(line)
            records.append(record)
            if "need" in record:
                answer = missing_line(catalog, record["need"].split())
                sent += len(answer.encode())
                proc.stdin.write(answer)
                proc.stdin.flush()
            elif "cached" in record:
                known.learn(record["cached"])
            elif "start" in record:
                acknowledge(proc)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    return sent, records


def results(records):
    return [r["result"] for r in records if "result" in r]


def fine(records) -> bool:
    """Every task reported, by modules that loaded and ran (this machine lacks the lab's
    eth1: the play's own outcome here is no matter)."""
    found = results(records)
    return len(found) == len(TEN_TASKS) and not any("fatal" in r for r in records) \
        and found[0] == dict(found[0], failed=False, msg="ok")  # fmt: skip


def test_a_host_with_the_code_cached_is_sent_digests_only(tmp_path):
    known = HostCode(cache=str(tmp_path / "cache"))
    first, records = play(tmp_path, known)
    assert fine(records) and known.magic == MAGIC and known.code
    second, records = play(tmp_path, known)
    assert fine(records)
    assert not any("need" in r or "cached" in r for r in records)
    assert second <= CACHED_BOUND, f"{second} bytes of stdin for a host that has the code"
    assert first > 5 * second  # the first contact carries the code


def test_nothing_known_sends_the_code_whole_and_caches_nothing(tmp_path):
    sent, records = play(tmp_path, HostCode(cache=None))
    assert fine(records) and sent > 100_000
    assert not any("cached" in r for r in records)


def altered(path: Path, marker: Path) -> None:
    """The cached file replaced by code that would leave `marker` if it ran."""
    evil = compile(f"open({str(marker)!r}, 'w').close()", "<evil>", "exec")
    path.write_bytes(marshal.dumps(evil))


def test_an_altered_cache_file_is_not_run_but_asked_for_again_and_replaced(tmp_path):
    known = HostCode(cache=str(tmp_path / "cache"))
    play(tmp_path, known)
    lib = next(e for e in unpack_code(known) if e[0] == "vnet_core")
    path = tmp_path / "cache" / MAGIC / lib[2]
    marker = tmp_path / "ran"
    altered(path, marker)
    _, records = play(tmp_path, known)
    assert not marker.exists()
    assert fine(records)
    assert [r["need"] for r in records if "need" in r] == ["vnet_core"]
    assert boot.digest(path.read_bytes()) == lib[2]  # replaced by the real file
    _, records = play(tmp_path, known)
    assert fine(records) and not any("need" in r for r in records)


def unpack_code(known: HostCode):
    """(name, source digest, code digest) of what a host holding the code is sent."""
    stdin = build_stdin(Catalog(), TEN_TASKS, True, known=known)
    code = unpack(stdin.splitlines()[1])["code"]
    return [(name, *entry) for name, entry in code.items() if isinstance(entry, tuple)]


def test_a_missing_cache_file_or_source_is_asked_for(tmp_path):
    known = HostCode(cache=str(tmp_path / "cache"))
    play(tmp_path, known)
    for name, source, _code in unpack_code(known):
        if name == "vnet_host":
            (tmp_path / "cache" / boot.SOURCES / source).unlink()  # a port group reads it
    _, records = play(tmp_path, known)  # a link play reads no source: none asked for
    assert fine(records) and not any("need" in r for r in records)
    group = [{"index": 0, "module": "port_group",
              "args": {"name": "web", "bridge": "br0", "vlan": 10}}]  # fmt: skip
    _, records = play(tmp_path, known, group)  # its hook writes the library's sources
    assert "vnet_host" in next(r["need"] for r in records if "need" in r).split()


def test_a_host_whose_python_reads_another_bytecode_compiles_the_sources(tmp_path):
    other = "0d0d0a00" if MAGIC != "0d0d0a00" else "0e0d0a00"
    known = HostCode(magic=other, cache=str(tmp_path / "cache"))
    stdin = build_stdin(Catalog(), TEN_TASKS, True, known=known)
    assert stdin.split("\n")[0].split()[1:3] == ["-", "-"]  # boot: the source alone
    code = unpack(stdin.splitlines()[1])["code"]
    assert all(entry[1] is None for entry in code.values())  # no code objects
    _, records = play(tmp_path, known)
    assert fine(records) and known.magic == MAGIC  # learnt from the host


def test_code_compiled_for_another_magic_is_never_loaded(tmp_path):
    """Digests learnt for one Python, a host now running another: the files are looked
    up under its own magic, not found, asked for."""
    known = HostCode(cache=str(tmp_path / "cache"))
    play(tmp_path, known)
    (tmp_path / "cache" / MAGIC).rename(tmp_path / "cache" / "00000000")
    _, records = play(tmp_path, known)
    assert fine(records) and len(next(r["need"] for r in records if "need" in r).split()) > 10


@pytest.mark.parametrize("how", ["group-writable", "a file"])
def test_a_cache_directory_that_is_not_ours_alone_is_not_used(tmp_path, how):
    cache = tmp_path / "cache"
    if how == "a file":
        cache.write_text("")
    else:
        cache.mkdir()
        os.chmod(cache, 0o777)
    known = HostCode(cache=str(cache))
    _, records = play(tmp_path, known)
    assert fine(records) and known.code == {}  # nothing cached, nothing claimed


def test_a_full_disk_leaves_no_cache_file_behind(tmp_path, monkeypatch):
    cache = boot.Cache(str(tmp_path / "cache"), MAGIC)
    monkeypatch.setattr(boot, "os", FullDisk(100))
    assert cache.write(MAGIC, b"x" * 1000) is None
    monkeypatch.undo()
    assert list((tmp_path / "cache" / MAGIC).iterdir()) == []
    assert cache.write(MAGIC, b"x" * 1000) == boot.digest(b"x" * 1000)


def spec(name="h1", python="/usr/bin/python3"):
    return ConnectionSpec(name, address="10.0.0.1", python=python)


def test_the_controller_keeps_what_it_learnt_between_runs(tmp_path):
    store = HostCodeStore(tmp_path / "hosts")
    report = {"magic": MAGIC, "code": {"a" * 32: "b" * 32}}
    assert store.get(spec()).learn(report)
    store.save(spec())
    again = HostCodeStore(tmp_path / "hosts")
    assert again.get(spec()).code == {"a" * 32: "b" * 32}
    assert again.get(spec(python="/usr/bin/python3.12")).code == {}  # another Python
    for path in (tmp_path / "hosts").iterdir():
        path.write_text("{not json")
    assert HostCodeStore(tmp_path / "hosts").get(spec()).code == {}  # as if never seen


def test_a_full_disk_on_the_controller_leaves_the_old_knowledge_whole(tmp_path, monkeypatch):
    store = HostCodeStore(tmp_path / "hosts")
    store.get(spec()).learn({"magic": MAGIC, "code": {"a" * 32: "b" * 32}})
    store.save(spec())

    def full(self, text, *args, **kwargs):
        raise OSError(28, "No space left on device")

    store.get(spec()).learn({"magic": MAGIC, "code": {"c" * 32: "d" * 32}})
    monkeypatch.setattr(Path, "write_text", full)
    store.save(spec())  # no error: the next run sends the code whole
    monkeypatch.undo()
    assert [p.name.startswith(".") for p in (tmp_path / "hosts").iterdir()] == [False]
    assert HostCodeStore(tmp_path / "hosts").get(spec()).code == {"a" * 32: "b" * 32}


def test_reports_that_are_not_digests_are_not_learnt():
    known = HostCode(magic=MAGIC)
    assert not known.learn({"magic": MAGIC, "code": {"../x": "b" * 32}}) and known.code == {}
    assert not known.learn({"magic": "nope", "code": {}})
    assert not known.learn(["not", "a", "report"])
    known.learn({"magic": MAGIC, "code": {f"{i:032x}": "b" * 32 for i in range(600)}})
    assert len(known.code) == host_code.KEEP


def test_the_boot_line_sent_with_every_play_stays_small():
    line = build_stdin(Catalog(), TEN_TASKS, True).split("\n")[0]
    assert line.startswith(boot.BOOT_MARK) and len(line) < 22_000


def test_the_controller_keeps_the_host_library_compiled_and_ignores_an_altered_copy(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = "VALUE = 42\n"
    code = hostlib.compiled.__wrapped__(source, "<vnetctl>/kept.py")
    [kept] = (tmp_path / "vnetctl" / "code").iterdir()
    assert kept.read_bytes().endswith(code)
    assert hostlib.compiled.__wrapped__(source, "<vnetctl>/kept.py") == code  # read back
    evil = marshal.dumps(compile("VALUE = 666\n", "<vnetctl>/kept.py", "exec"))
    kept.write_bytes(kept.read_bytes()[:16] + evil)
    again = hostlib.compiled.__wrapped__(source, "<vnetctl>/kept.py")
    assert again == code and kept.read_bytes().endswith(code)  # compiled again, replaced
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")
    assert hostlib.compiled.__wrapped__(source, "<vnetctl>/kept.py") == code  # no cache: fine


def test_a_need_after_stdin_was_closed_is_no_lost_connection():
    """A stop closed the host's stdin while it asked for code: it reads EOF and stops;
    the host is not reported unreachable for the answer that could not be written."""

    class Closed:
        async def write(self, data):
            raise ConnectionLost("connection lost: Channel not open for sending")

    catalog = Catalog()
    known = HostCode(magic=MAGIC, cache=None)
    build_stdin(catalog, TEN_TASKS, True, known=known)  # the play's files, as a run has them
    play = SimpleNamespace(need=["vnet_core"], cached=None)
    assert asyncio.run(answer(Closed(), play, catalog, known)) is False
    assert play.need == []


def other_python() -> str | None:
    """An interpreter here whose bytecode differs from this one's, if any (3.9+)."""
    roots = [os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")]
    found = [shutil.which(f"python3.{minor}") for minor in range(9, 15)]
    found += sorted(str(p) for r in roots for p in Path(r).glob("versions/3.*/bin/python3"))
    for python in filter(None, found):
        done = subprocess.run([python, "-c", "import importlib.util as u, sys;"
                               "print(sys.version_info >= (3, 9), u.MAGIC_NUMBER.hex())"],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode == 0 and done.stdout.split() and done.stdout.split()[0] == "True" \
                and done.stdout.split()[1] != MAGIC:  # fmt: skip
            return python
    return None


def test_a_host_with_another_python_compiles_once_then_runs_its_own_cached_code(
    tmp_path, monkeypatch
):
    python = other_python()
    if python is None:
        pytest.skip("no Python 3.9+ with another bytecode on this machine")
    import tests.unit.host_process as hp  # noqa: PLC0415

    monkeypatch.setattr(hp.sys, "executable", python)  # the host's interpreter
    known = HostCode(cache=str(tmp_path / "cache"))
    _, records = play(tmp_path, known)  # sent our code and the sources: compiled there
    assert fine(records) and known.magic not in (None, MAGIC)
    stdin = build_stdin(Catalog(), TEN_TASKS, True, known=known)
    assert stdin.split("\n")[0].split()[1:3] == ["-", "-"]  # boot as source alone
    sent, records = play(tmp_path, known)
    assert fine(records) and not any("need" in r for r in records)
    assert sent <= CACHED_BOUND


def test_hosts_reporting_the_same_digests_share_them():
    """What the run keeps per host of its code cache (memory that grows with the fleet):
    the digests every host of a fleet reports alike are one string each."""
    digests = {f"{n:032x}": f"{n + 100:032x}" for n in range(12)}
    hosts = [HostCode(), HostCode()]
    for known in hosts:  # as each host's JSON record makes them: strings of their own
        known.learn(json.loads(json.dumps({"magic": "a70d0d0a", "code": digests})))
    (first, *_), (second, *_) = (list(h.code.items()) for h in hosts)
    assert first == second and first[0] is second[0] and first[1] is second[1]
    assert hosts[0].magic is hosts[1].magic
