"""Traffic types separated by VLAN, shaped on a trunk uplink of a Linux bridge (issue 26),
on the lab's kernel, which has no flower, no `basic` and no 8021q: the `vlan` match is a
cls_bpf filter reading the tag the kernel keeps beside a received frame. A guest-like
port sends frames tagged 10 and 20 (frames.py, raw AF_PACKET) into a bridge whose
uplink eth1 is shaped; each class counts exactly its VLAN's frames, the untagged ones
go to the default class; drift and snapshot read the filters back as `vlan` matches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

FRAMES = (Path(__file__).parent / "frames.py").read_text()
COUNT = 7  # frames per VLAN; the classes must count exactly these
CLASSES = [
    {"name": "storage", "shares": 75, "match": [{"vlan": 10}]},
    {"name": "migration", "limit": 30, "match": [{"vlan": 20}]},
    {"name": "vm", "shares": 25},
]


def sh(lab, host: str, *argv: str) -> str:
    done = host_exec(lab.name, host, list(argv))
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with own_lab("sv", tmp_path_factory.mktemp("sv"), hosts=1) as state:
        host = state.host_names[0]
        for command in ("link add br-trunk type bridge", "link set eth1 master br-trunk",
                        "link add tg0 type veth peer name tg1", "link set tg0 master br-trunk",
                        "link set tg0 up", "link set tg1 up", "link set br-trunk up"):  # fmt: skip
            sh(state, host, "ip", *command.split())
        yield state


def packets_by_class(lab, host: str) -> dict[str, int]:
    text = sh(lab, host, "tc", "-s", "class", "show", "dev", "eth1")
    return {
        cid: int(n)
        for cid, n in re.findall(r"class htb (\S+) .*?\n\s*Sent \d+ bytes (\d+) pkt", text)
    }


def send(lab, host: str, frames: list[dict]) -> None:
    spec = {"send": frames, "listen": [], "count": COUNT}
    sh(lab, host, "python3", "-c", FRAMES, json.dumps(spec))


def test_each_vlan_is_its_own_class_on_a_trunk_uplink(lab, capsys, tmp_path):
    host = lab.host_names[0]
    book = tmp_path / "vlans.yml"
    task = {"name": "eth1", "speed": 100, "classes": CLASSES}
    book.write_text(json.dumps([{"hosts": host, "tasks": [{"traffic_shaping": task}]}]))
    inv = str(lab.inventory_path)
    code = main(["run", str(book), "-i", inv, "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    commands = doc["results"][0]["commands"]
    assert sum(" bpf bytecode " in c for c in commands) == 2, commands

    before = packets_by_class(lab, host)
    guest = "02:00:00:00:26:01"
    send(lab, host, [{"dev": "tg1", "src": guest, "tag": "ten", "vlans": [10]},
                     {"dev": "tg1", "src": guest, "tag": "twenty", "vlans": [20]},
                     {"dev": "tg1", "src": guest, "tag": "untagged", "vlans": []}])  # fmt: skip
    after = packets_by_class(lab, host)
    sent = {cid: after[cid] - before.get(cid, 0) for cid in after}
    # storage is 1:3c84, migration 1:e092 (ids from the names), vm the default 1:2
    assert sent["1:3c84"] == COUNT and sent["1:e092"] == COUNT, sent
    assert sent["1:2"] >= COUNT, sent  # the untagged frames (and whatever else the host sent)

    history = ["--history", str(tmp_path / "h.sqlite")]
    code = main(["drift", str(book), "-i", inv, "--format", "json", *history])
    assert code == 0, capsys.readouterr().out
    capsys.readouterr()
    out = tmp_path / "snapshot.yml"
    assert main(["snapshot", "-i", inv, "-o", str(out)]) == 0
    capsys.readouterr()
    text = out.read_text()
    assert "vlan: 10" in text and "vlan: 20" in text, text
