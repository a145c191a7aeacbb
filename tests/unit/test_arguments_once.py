"""A task's arguments are checked once on the host (and once on the controller, with
file:line): before, vnetctl's host program checked them, the engine's plan() again, and
the guard's preflight, the commit-confirmed journal and every rollback once more."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_module_seam import run_host_process

from vnetctl.catalog import Catalog, modules_dir
from vnetctl.runner.payload import LockSpec, build_stdin

host = Catalog().host_lib()
FACTS = Path(__file__).parent / "fixtures" / "facts"

# a module whose spec counts how often the rulebook looks a given argument up in it (once
# per check: vnet_params.check_names), and says so in its result
COUNTED = '''\
#!/usr/bin/python3
# WANT_JSON
"""Counts the checks of its arguments (a module written for a test)."""

import sys

try:
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:
    import vnet_host as host

CHECKS = []


class Spec(dict):
    def __contains__(self, name):
        CHECKS.append(name)
        return super().__contains__(name)


ARGUMENT_SPEC = Spec({"name": {"type": "str", "default": "x"}})


def run(params, check, facts):
    return {"changed": False, "failed": False, "msg": "checked %d" % len(CHECKS)}


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
'''


@pytest.fixture
def library(tmp_path: Path) -> Path:
    shutil.copytree(modules_dir() / "module_utils", tmp_path / "module_utils")
    (tmp_path / "counted.py").write_text(COUNTED)
    return tmp_path


def test_the_host_program_checks_a_tasks_arguments_once(library, tmp_path):
    tasks = [{"index": 0, "module": "counted", "args": {"name": "y"}}]
    stdin = build_stdin(
        Catalog(library), tasks, check=True, lock=LockSpec(wait=1, directory=str(tmp_path))
    )
    results = [r["result"] for r in run_host_process(stdin) if "result" in r]
    assert results == [{"changed": False, "failed": False, "msg": "checked 1"}]


def test_the_engine_does_not_check_checked_arguments_again(monkeypatch):
    rules, calls = host.vnet_params, []
    check_args = rules.check_args
    monkeypatch.setattr(rules, "check_args", lambda *a, **k: calls.append(1) or check_args(*a, **k))
    module = Catalog().load("linux_bridge")
    facts = host.Facts(json.loads((FACTS / "plain_host.json").read_text()))
    params = host.normalize_params(module.ARGUMENT_SPEC, {"name": "br-new", "ports": ["eth1"]})
    assert len(calls) == 1
    result = host.execute(module, params, True, facts)
    assert result["changed"] and len(calls) == 1
    host.execute(module, dict(params), True, facts)  # a plain dict: checked, as given
    assert len(calls) == 2
