"""`vnetctl facts` and `vnetctl snapshot` render no playbook, so no secret was ever read
and registered: what hosts said back (a device named like a password, an alias holding
it) was printed in clear. Every secret variable of the inventory and -e is registered
before any command runs (issue 31). The hosts' part is a recorded answer here; the lab
test of the fault suite does the same on real hosts."""

from __future__ import annotations

import json

import pytest
import yaml

from vnetctl.cli import facts_cmd, snapshot_cmd
from vnetctl.cli.main import main
from vnetctl.runner.results import RunResult
from vnetctl.secrets import new_run

PASSWORD = 'S3cret"Pass\\wörd'  # a quote, a backslash, non-ASCII: JSON and YAML escape them
DERIVED = "vault-S3cret"
INVENTORY = f"""\
all:
  vars:
    vault_password: {json.dumps(PASSWORD)}
    uplink_alias: "vault-{{{{ vault_password[:6] }}}}"
    vnetctl_secret_vars: [uplink_alias]
  hosts:
    h1: {{ansible_host: 192.0.2.1}}
"""


def facts_with_secrets() -> dict:
    links = [
        {"ifname": "eth1", "ifalias": PASSWORD, "mtu": 1500, "operstate": "UP"},
        {"ifname": "eth2", "ifalias": DERIVED, "mtu": 1500, "operstate": "UP"},
    ]
    return {"links": links, "addrs": [], "fdb": [], "ovs": None}


def gathered(*_args, **_kwargs):
    outcome = RunResult(hosts=["h1", "h2"], unreachable={"h2": f"login as {PASSWORD} refused"})
    return {"h1": facts_with_secrets()}, {"h2": f"unreachable: {PASSWORD}\nnext"}, outcome


@pytest.fixture
def inventory(tmp_path, monkeypatch):
    new_run()
    monkeypatch.setattr(facts_cmd, "read_facts", gathered)
    monkeypatch.setattr(snapshot_cmd, "read_facts", gathered)
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    yield str(path)
    new_run()


def assert_hidden(text: str) -> None:
    for leak in (PASSWORD, json.dumps(PASSWORD)[1:-1], "S3cret", DERIVED):
        assert leak not in text, f"{leak!r} in:\n{text}"


def test_facts_hide_secret_values_however_json_escapes_them(inventory, capsys):
    main(["facts", "-i", inventory])
    out, err = capsys.readouterr()
    assert_hidden(out + err)
    doc = json.loads(out)
    assert doc["hosts"]["h1"]["links"][0]["ifalias"] == "***"


def test_a_snapshot_hides_them_and_keeps_each_reason_one_comment(inventory, capsys, tmp_path):
    main(["snapshot", "-i", inventory, "-o", str(tmp_path / "snap.yml")])
    text = (tmp_path / "snap.yml").read_text()
    assert_hidden(text + "".join(capsys.readouterr()))
    header = [line for line in text.splitlines() if "h2:" in line or "next" in line]
    assert header and all(line.startswith("# ") for line in header), text
    yaml.safe_load(text)
