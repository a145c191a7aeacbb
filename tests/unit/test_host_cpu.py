"""What a host's process spends CPU on per play (bench.host_cost): only the library files
the play's code uses are shipped and loaded, and no import searches the host's disk for
a package that cannot be there."""

from __future__ import annotations

import ast
import marshal
import sys
from pathlib import Path

import pytest

from tests.unit.host_process import host_process, records_until_done
from vnetctl.catalog import Catalog, libraries_used
from vnetctl.hostlib import modules_dir
from vnetctl.hostside import boot
from vnetctl.runner import payload
from vnetctl.runner.payload import LockSpec, build_stdin, remote_command

CATALOG = Catalog()
MODULES, HOSTSIDE = modules_dir(), Path(boot.__file__).parent
LINK_PLAY = [{"index": i, "module": "link", "args": {"name": "lo"}} for i in range(3)]


def test_a_name_in_a_comment_or_docstring_ships_nothing():
    text = (
        '"""Uses vnet_tc\'s qdiscs (see vnet_htb)."""\n'
        "import vnet_core\n"
        "import vnet_guests as libvirt_status\n"
        "try:\n"
        "    from ansible.module_utils import vnet_fib, vnet_ip  # not vnet_kernel's\n"
        "    from ansible.module_utils import (\n        vnet_ovs,\n        vnet_params,\n    )\n"
        "    from ansible.module_utils.vnet_host import HOST_LIBRARY as host\n"
        "except ImportError:\n"
        "    pass\n"
        'HOOK = "vnet_vm_hook"  # imported by name\n'
        "# vnet_vlans, in a comment\n"
    )
    # a trailing comment on an import line may ship one more (vnet_kernel): harmless
    found = {"vnet_core", "vnet_guests", "vnet_fib", "vnet_ip", "vnet_kernel", "vnet_ovs",
             "vnet_params", "vnet_host", "vnet_vm_hook"}  # fmt: skip
    assert libraries_used(text) == found


def test_a_link_play_ships_no_library_file_only_named_in_a_docstring():
    shipped = set(CATALOG.host_lib_sources(["link"]))
    assert {"vnet_host", "vnet_persist", "vnet_safety", "vnet_hostnet"} <= shipped
    assert not shipped & {"vnet_tc", "vnet_htb", "vnet_vlans", "vnet_kernel"}


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_module_loads_from_the_files_its_play_ships(name, tmp_path):
    stdin = build_stdin(CATALOG, [{"index": 0, "module": name, "args": {}}], True,
                        LockSpec(wait=5, directory=str(tmp_path)))  # fmt: skip
    with host_process(stdin) as proc:
        records = records_until_done(proc)
    assert not [r for r in records if "fatal" in r]
    assert len([r for r in records if "result" in r]) == 1


def test_the_host_process_never_searches_for_ansible(tmp_path):
    """Each library file tries `from ansible.module_utils import` first; under -I -S
    there is no ansible to find, and each search cost a play ~25 us of stat calls."""
    stdin = build_stdin(CATALOG, LINK_PLAY, True, LockSpec(wait=5, directory=str(tmp_path)))
    with host_process(stdin, remote_command(f"{sys.executable} -X importtime")) as proc:
        records = records_until_done(proc)
        imported = proc.stderr.read()
    assert len([r for r in records if "result" in r]) == len(LINK_PLAY)
    assert "| _json" in imported  # the report is there
    assert not [line for line in imported.splitlines() if line.endswith("ansible")]


def host_sources() -> list[Path]:
    return [*MODULES.glob("*.py"), *(MODULES / "module_utils").glob("*.py"),
            *HOSTSIDE.glob("*.py")]  # fmt: skip


def test_the_code_a_host_runs_is_sent_without_docstrings():
    code = marshal.loads(payload._entry("vnet_example", '"""What it is."""\nX = 1\n').code)
    module = {}
    exec(code, module)
    assert module.get("__doc__") is None and module["X"] == 1


@pytest.mark.parametrize("path", host_sources(), ids=lambda p: p.name)
def test_host_code_holds_nothing_that_minus_oo_would_change(path):
    """No assert (-O drops it) and no read of a docstring (-OO drops them)."""
    tree = ast.parse(path.read_text())
    asserts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    docs = [
        n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "__doc__"
    ]
    assert not asserts and not docs, f"{path.name}: assert at {asserts}, __doc__ at {docs}"


def shipped(check: bool) -> list[str]:
    code = payload.unpack(build_stdin(CATALOG, LINK_PLAY, check).splitlines()[1])["code"]
    return list(code)


def test_what_check_mode_alone_uses_is_shipped_to_check_mode_plays_alone(tmp_path):
    assert not set(boot.CHECK_LIBS) & set(shipped(check=False))
    assert set(boot.CHECK_LIBS) <= set(shipped(check=True))
    for check in (False, True):
        stdin = build_stdin(CATALOG, LINK_PLAY, check, LockSpec(wait=5, directory=str(tmp_path)))
        with host_process(stdin) as proc:
            records = records_until_done(proc)
        assert [r["result"]["failed"] for r in records if "result" in r] == [False] * 3
