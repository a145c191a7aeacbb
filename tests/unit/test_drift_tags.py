"""`vnetctl drift --tags/--skip-tags` (and `drift schedule install` with them): the tasks
checked are those `run --tags` runs, by the same rules; the check's identity (its
history, its Prometheus label) and every report say which tasks were checked."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
from drift_samples import full_report

from vnetctl.cli.drift_cmd import prepare_check
from vnetctl.cli.main import build_parser, commands_of, main
from vnetctl.drift import formats
from vnetctl.drift.check import CheckTarget
from vnetctl.drift.formats.json_format import schema
from vnetctl.drift.report import check_id
from vnetctl.errors import InputError

BOOK = """\
- hosts: all
  tasks:
    - name: VM bridge
      linux_bridge: {name: br-vm, ports: [eth1]}
      tags: [bridge]
    - name: storage MTU
      link: {name: eth2, mtu: 9000}
      tags: [mtu]
    - name: uplink up
      link: {name: eth1, admin_state: up}
"""
INVENTORY = "all:\n  hosts:\n    h1: {ansible_host: 192.0.2.10}\n"


@pytest.fixture
def where(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site.yml").write_text(BOOK)
    (tmp_path / "inv.yml").write_text(INVENTORY)
    return tmp_path


def checked(*options) -> list[str]:
    """The tasks a drift check with `options` plans (no host is contacted)."""
    args = dict(commands_of(build_parser()))["drift"].parse_args(
        ["site.yml", "-i", "inv.yml", "--no-history", *options]
    )
    plans = prepare_check(args).plans
    return [t.name for plan in plans for t in plan.tasks["h1"]]


@pytest.mark.parametrize(
    ("options", "tasks"),
    [
        ([], ["VM bridge", "storage MTU", "uplink up"]),
        (["--tags", "bridge"], ["VM bridge"]),
        (["-t", "bridge,mtu"], ["VM bridge", "storage MTU"]),
        (["--tags", "untagged"], ["uplink up"]),
        (["--skip-tags", "mtu"], ["VM bridge", "uplink up"]),
        (["--tags", "bridge", "--tags", "mtu", "--skip-tags", "bridge"], ["storage MTU"]),
    ],
)
def test_drift_checks_the_tasks_run_would_run(where, options, tasks):
    assert checked(*options) == tasks


def test_an_unknown_tag_is_refused_as_run_refuses_it(where, capsys):
    with pytest.raises(InputError, match="unknown tag 'brige'.*did you mean 'bridge'"):
        checked("--tags", "brige")
    assert main(["drift", "site.yml", "-i", "inv.yml", "--skip-tags", "mtus"]) == 1
    assert "unknown tag 'mtus'" in capsys.readouterr().err


def test_a_check_of_some_tags_is_a_check_of_its_own():
    """Its history must not call the other tasks' items resolved; a check without tags
    keeps the identity (history, Prometheus label) it had before tags existed."""
    whole = CheckTarget("site.yml", "inv.yml")
    bridge = CheckTarget("site.yml", "inv.yml", tags=["bridge"])
    old = "\0".join([str(Path("site.yml").resolve()), str(Path("inv.yml").resolve()), ""])
    assert whole.check_id == hashlib.sha256(old.encode()).hexdigest()[:16]
    skipping = CheckTarget("site.yml", "inv.yml", skip_tags=["bridge"])
    assert len({whole.check_id, bridge.check_id, skipping.check_id}) == 3
    assert bridge.check_id == check_id("site.yml", "inv.yml", None, ["bridge"])
    assert CheckTarget("site.yml", "inv.yml", "h1", ["a", "b"], ["c"]).label == (
        "site.yml on inv.yml --limit h1 --tags a,b --skip-tags c"
    )


def test_every_report_says_which_tasks_were_checked():
    report = dataclasses.replace(full_report(), tags=["bridge"], skip_tags=["mtu"])
    doc = json.loads(formats.render(report, "json"))
    jsonschema.validate(doc, schema())
    assert (doc["tags"], doc["skip_tags"]) == (["bridge"], ["mtu"])
    assert "--tags bridge --skip-tags mtu" in formats.render(report, "text").splitlines()[0]
    assert "--tags bridge --skip-tags mtu" in formats.render(report, "html")
    assert "--tags" not in formats.render(full_report(), "text").splitlines()[0]


def test_a_schedule_runs_the_tags_it_was_given(where):
    install = ["drift", "schedule", "install", "--systemd", "--unit-dir", str(where / "units")]
    assert (
        main([*install, "--name", "bridges", "site.yml", "-i", "inv.yml", "--tags", "bridge"]) == 0
    )
    service = (where / "units" / "vnetctl-drift-bridges.service").read_text()
    assert "--tags bridge" in service
    assert main([*install, "--name", "typo", "site.yml", "-i", "inv.yml", "--tags", "brige"]) == 1
    assert not (where / "units" / "vnetctl-drift-typo.service").exists()


def test_mesh_check_probes_the_meshes_of_the_tasks_kept(where, monkeypatch):
    """`mesh check` reads a playbook too: the same --tags and --skip-tags."""
    import vnetctl.cli.mesh_cmd as mesh_cmd  # noqa: PLC0415

    seen = []

    def check_mesh(plans, _context, _playbook, **_sample):
        seen.append([t.name for plan in plans for t in plan.tasks["h1"]])
        raise SystemExit(0)

    monkeypatch.setattr(mesh_cmd, "check_mesh", check_mesh)
    with pytest.raises(SystemExit):
        main(["mesh", "check", "site.yml", "-i", "inv.yml", "--skip-tags", "bridge"])
    assert seen == [["storage MTU", "uplink up"]]
    assert main(["mesh", "check", "site.yml", "-i", "inv.yml", "--tags", "brige"]) == 1
