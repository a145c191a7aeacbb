"""Pure planning from recorded facts: fixtures/plans/*.yml, facts from fixtures/facts/.

Each case: the module, the host's facts as the kernel reported them, the desired
params, and either the expected changed fields and commands (and `waiting`: the fields
declared but not planned yet, ovs_bridge's mirrors of a VM port not there), or the
expected error.
A case with `rollback_to` (a state as read() returned it before a task) plans the
rollback from the host's facts back to that state: `changes` are then the fields that
differ, and `steps` the rollback's commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vnetctl.catalog import Catalog

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = Catalog()
vnet_host = CATALOG.host_lib()


def _cases():
    for path in sorted((FIXTURES / "plans").glob("*.yml")):
        for case in yaml.safe_load(path.read_text()):
            yield pytest.param(case, id=f"{path.stem}: {case['name']}")


def plan(case):
    """The host library's own planning path (the one execute and rollbacks use)."""
    module = CATALOG.load(case["module"])
    facts = vnet_host.Facts(json.loads((FIXTURES / "facts" / case["facts"]).read_text()))
    planned = vnet_host.plan(module, case["params"], facts, target=case.get("rollback_to"))
    assert sorted(planned["waiting"]) == case.get("waiting", [])
    return planned["changes"], [" ".join(s) for s in planned["steps"]]


def check_mode(case):
    """What execute() says in check mode: it plans by the same path."""
    module = CATALOG.load(case["module"])
    facts = vnet_host.Facts(json.loads((FIXTURES / "facts" / case["facts"]).read_text()))
    return vnet_host.execute(module, case["params"], True, facts)


@pytest.mark.parametrize("case", list(_cases()))
def test_plan(case):
    if "error" in case:
        with pytest.raises(vnet_host.ModuleError) as err:
            plan(case)
        assert str(err.value) == case["error"]
        assert check_mode(case)["failed"] and check_mode(case)["msg"] == case["error"]
        return
    changes, steps = plan(case)
    assert [c["field"] for c in changes] == case["changes"]
    assert steps == case["steps"]
    if "rollback_to" not in case:
        result = check_mode(case)
        assert [c["field"] for c in result["changes"]] == case["changes"]
        assert result.get("commands", []) == case["steps"] and not result["failed"]
        assert sorted(result.get("waiting", {})) == case.get("waiting", [])
