"""`vnetctl drift --tags/--skip-tags` on a lab host: an MTU changed by hand is drift for
a check of the MTU's tag, not for one that skips it; a check of some tags keeps a
history of its own (the whole check's items are not "resolved" by it)."""

from __future__ import annotations

import json

import pytest

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

BOOK = """\
- hosts: all
  tasks:
    - name: VM bridge
      linux_bridge: {name: br-tags, ports: [eth1]}
      tags: [bridge]
    - name: storage MTU
      link: {name: eth2, mtu: 1400}
      tags: [mtu]
"""


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("dt", tmp_path_factory.mktemp("dt"), hosts=1) as state:
        yield state


def test_drift_of_some_tags(lab, tmp_path, capsys):
    book, inv = tmp_path / "site.yml", str(lab.inventory_path)
    book.write_text(BOOK)
    assert main(["run", str(book), "-i", inv]) == 0
    host = lab.host_names[0]
    host_exec(lab.name, host, ["ip", "link", "set", "dev", "eth2", "mtu", "1500"], check=True)
    capsys.readouterr()

    def drift(*options) -> tuple[int, dict]:
        code = main(["drift", str(book), "-i", inv, "--history", str(tmp_path / "h.sqlite"),
                     "--format", "json", *options])  # fmt: skip
        return code, json.loads(capsys.readouterr().out)

    code, whole = drift()
    assert code == 2
    assert [(i["resource"], i["field"]) for i in whole["hosts"][0]["items"]] == [
        ("link eth2", "mtu")]  # fmt: skip
    code, doc = drift("--skip-tags", "mtu")
    assert code == 0, doc
    assert doc["skip_tags"] == ["mtu"] and doc["resolved"] == []  # not the whole check's
    assert doc["hosts"][0]["resources"] == 1  # the bridge alone was checked
    code, doc = drift("--tags", "mtu")
    assert code == 2 and doc["tags"] == ["mtu"]
    assert [i["declared"] for i in doc["hosts"][0]["items"]] == [1400]
    code, doc = drift("--tags", "bridge", "--limit", host)
    assert code == 0 and doc["hosts"][0]["resources"] == 1
