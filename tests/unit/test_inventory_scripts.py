"""Executable inventory scripts (Ansible's --list/--host protocol), read as the real
ansible-inventory reads them; bounded in time; each failure one error naming the script."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.labhosts import wait_until
from tests.unit.real_ansible import inventory_list, needs_ansible
from tests.unit.test_inventory_formats import ansible_view, our_view
from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory

WITH_META = {
    "kvm": {"hosts": ["kvm1", "kvm2"], "vars": {"mtu": 9000}, "children": ["edge"]},
    "edge": ["e1"],
    "solo": {"role": "lone"},
    "all": {"vars": {"site": "par"}},
    "_meta": {"hostvars": {"kvm1": {"ansible_host": "10.0.0.1", "mtu": 1500}, "e1": {}}},
}


def unsafe_unwrapped(value):
    """--list marks some values `{"__ansible_unsafe": x}`: x."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unsafe_unwrapped(v) for k, v in value.items()}
    return value


def same_as_ansible(inv, source: Path, cwd: Path) -> None:
    """Hosts, groups and every host's variables as ansible-inventory --list says."""
    theirs = unsafe_unwrapped(inventory_list("-i", str(source), cwd=cwd))
    hostvars, groups = ansible_view(theirs)
    ours_vars, ours_groups = our_view(inv)
    assert ours_groups == groups
    assert {h: v for h, v in ours_vars.items() if v} == hostvars  # --list omits empty ones


def script(folder: Path, body: str, name: str = "inv.py") -> Path:
    path = folder / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def printing(folder: Path, data: dict, name: str = "inv.py") -> Path:
    return script(
        folder,
        f"""\
        import json, sys
        print(json.dumps({data!r}))
        """,
        name,
    )


@needs_ansible
def test_script_with_meta_as_ansible_inventory_reads_it(tmp_path):
    path = printing(tmp_path, WITH_META)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "edge.yml").write_text("zone: b\n")
    inv = load_inventory(path)
    same_as_ansible(inv, path, tmp_path)
    assert inv.hosts["kvm1"].vars["ansible_host"] == "10.0.0.1"
    assert inv.hosts["e1"].vars == {"site": "par", "mtu": 9000, "zone": "b"}
    assert inv.hosts["solo"].vars["role"] == "lone"


@needs_ansible
def test_script_without_meta_is_asked_for_each_host(tmp_path):
    calls = tmp_path / "calls"
    path = script(
        tmp_path,
        f"""\
        import json, sys
        with open({str(calls)!r}, "a") as log:
            log.write(" ".join(sys.argv[1:]) + "\\n")
        if sys.argv[1] == "--list":
            print(json.dumps({{"kvm": ["kvm1", "kvm2"], "edge": {{"hosts": ["e1"]}}}}))
        elif sys.argv[2] == "kvm2":
            print("")  # nothing: no variables
        else:
            print(json.dumps({{"name_of": sys.argv[2]}}))
        """,
    )
    inv = load_inventory(path)
    assert calls.read_text().splitlines() == ["--list", "--host kvm1", "--host kvm2", "--host e1"]
    assert inv.hosts["kvm1"].vars == {"name_of": "kvm1"} and inv.hosts["kvm2"].vars == {}
    same_as_ansible(inv, path, tmp_path)


def test_script_in_a_directory_beside_a_static_file(tmp_path):
    printing(tmp_path, {"kvm": ["kvm1"], "_meta": {"hostvars": {"kvm1": {"a": 1}}}}, "10-cmdb")
    (tmp_path / "20-static.ini").write_text("[kvm]\nkvm2 b=2\n")
    inv = load_inventory(tmp_path)
    assert inv.groups["kvm"].hosts == ["kvm1", "kvm2"]
    assert inv.hosts["kvm1"].vars == {"a": 1}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("import sys\nsys.stderr.write('cmdb: 401 unauthorized\\n')\nsys.exit(3)\n",
         ["--list` failed with exit code 3; its stderr:", "cmdb: 401 unauthorized"]),
        ("print('{\"kvm\": [\"a\",]}')\n",
         ["--list` did not print JSON (", "at line 1 column 14 of its output)"]),
        ("print('[1, 2]')\n", ["expected a JSON mapping of groups, got list"]),
        ("print('{\"kvm\": {\"hosts\": \"a\"}}')\n", ["kvm.hosts must be a list, got string"]),
        ("print('{\"_meta\": {\"hostvars\": []}}')\n", ["_meta.hostvars must be a mapping"]),
        ("import os\nos.kill(os.getpid(), 9)\n", ["--list` was killed by SIGKILL"]),
        ("import sys\nsys.stdout.buffer.write(b'\\xff')\n", ["printed output that is not UTF-8"]),
    ],
)  # fmt: skip
def test_a_failing_script_is_one_error_naming_it(tmp_path, body, words):
    path = script(tmp_path, body)
    with pytest.raises(InputError) as info:
        load_inventory(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_stderr_lines_cannot_pass_for_lines_of_their_own(tmp_path):
    path = script(
        tmp_path, "import sys\nsys.stderr.write('a\\nok: [h1]\\x1b[2J\\n')\nsys.exit(1)\n"
    )
    with pytest.raises(InputError) as info:
        load_inventory(path)
    assert "\n    ok: [h1]\\x1b[2J" in str(info.value)


def test_a_hung_script_and_what_it_started_are_killed_at_the_timeout(tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    path = script(
        tmp_path,
        f"""\
        import os, subprocess, sys, time
        child = subprocess.Popen(["sleep", "60"])
        open({str(pids)!r}, "w").write(f"{{child.pid}}\\n")
        sys.stderr.write("waiting for the cmdb\\n"); sys.stderr.flush()
        time.sleep(60)
        """,
    )
    monkeypatch.setenv("VNETCTL_INVENTORY_SCRIPT_TIMEOUT", "2s")
    started = time.monotonic()
    with pytest.raises(InputError) as info:
        load_inventory(path)
    assert time.monotonic() - started < 20
    assert "--list` did not finish in 2s (killed); its stderr:" in str(info.value)
    assert "waiting for the cmdb" in str(info.value)
    child = int(pids.read_text())

    def gone() -> bool:
        try:
            state = Path(f"/proc/{child}/stat").read_text().split()[2]
        except OSError:
            return True
        return state == "Z"

    wait_until(gone, 10, "the script's child killed")


def test_a_script_that_is_not_executable_is_refused_with_chmod(tmp_path):
    path = printing(tmp_path, {})
    os.chmod(path, 0o644)
    with pytest.raises(InputError, match=r"chmod \+x"):
        load_inventory(path)
