"""The module contract is written in one place (vnet_host's docstring, summarised in the
README's Modules section), and every module keeps to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

ROOT = Path(__file__).parents[2]
CATALOG = Catalog()
host = CATALOG.host_lib()
RULES = host.vnet_params


def readme_modules_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Modules") : text.index("## VXLAN meshes")]


CONTRACT = ["ARGUMENT_SPEC", "RESOURCE", "FACTS", "read(", "desired(", "steps(", "snapshot(",
            "SNAPSHOT_ORDER", "run(", "persist(", "NOT_PERSISTED", "aliases", "rollback",
            "keyed by identity", "sysctl_step", "document_step"]  # fmt: skip


@pytest.mark.parametrize("where", ["vnet_host docstring", "README Modules section"])
def test_the_contract_names_every_part_and_every_rule_key_and_type(where):
    text = host.__doc__ if where == "vnet_host docstring" else readme_modules_section()
    for word in [*CONTRACT, *RULES.RULE_KEYS, *RULES.TYPES]:
        assert re.search(re.escape(word), text), f"{where} does not say {word!r}"


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_module_keeps_to_the_contract(name):
    module = CATALOG.load(name)
    RULES.check_spec(module.ARGUMENT_SPEC, name)  # no aliases, known keys and types
    if hasattr(module, "run"):
        assert not hasattr(module, "read")
    else:
        assert all(callable(getattr(module, f, None)) for f in ("read", "desired", "steps"))
        assert isinstance(module.RESOURCE, str)
        assert "name" in module.ARGUMENT_SPEC or callable(getattr(module, "resource_name", None))
    if hasattr(module, "snapshot"):
        assert isinstance(module.SNAPSHOT_ORDER, int)
    if hasattr(module, "persist"):  # the host program writes it with vnet_persist, which a
        assert "vnet_persist" in CATALOG.host_lib_sources([name])  # play ships if imported
    if hasattr(module, "read"):  # a resource: boot configuration, or why there is none
        assert hasattr(module, "persist") != isinstance(getattr(module, "NOT_PERSISTED", None),
                                                        str)  # fmt: skip
    for source in getattr(module, "FACTS", {}).values():
        assert isinstance(source, host.vnet_facts.Source)
    text = (CATALOG.directory / f"{name}.py").read_text()
    assert "host.ansible_main(sys.modules[__name__])" in text  # runs under Ansible too
