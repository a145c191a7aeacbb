"""INI inventories, directory inventories, several sources and `ansible-inventory --list`
JSON: hosts, groups and variables as the real ansible-inventory (ansible-core 2.19) reads
the same files; malformed INI named by file and line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.inventory.model import Inventory

ROOT = Path(__file__).parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "inventories"
ANSIBLE_INVENTORY = ROOT / ".venv-ansible" / "bin" / "ansible-inventory"
needs_ansible = pytest.mark.skipif(
    not ANSIBLE_INVENTORY.exists(), reason="needs .venv-ansible (setup.sh)"
)


def ansible_list(*sources: Path) -> dict:
    argv = [str(ANSIBLE_INVENTORY), "--list"]
    for source in sources:
        argv += ["-i", str(source)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def _members(data: dict, group: str) -> set[str]:
    body = data.get(group, {})
    found = set(body.get("hosts", []))
    for child in body.get("children", []):
        found |= _members(data, child)
    return found


def ansible_view(data: dict) -> tuple[dict, dict]:
    """hostvars; group -> (every host in it, its direct children), as `--list` says."""
    groups = {
        name: (_members(data, name), set(body.get("children", [])))
        for name, body in data.items()
        if name != "_meta"
    }
    return data["_meta"]["hostvars"], groups


def our_view(inventory: Inventory) -> tuple[dict, dict]:
    hostvars = {h.name: h.vars for h in inventory.hosts.values()}
    groups = {
        g.name: (set(g.hosts), set(g.children))
        for g in inventory.groups.values()
        if g.hosts or g.children  # --list leaves out empty groups
    }
    return hostvars, groups


def test_ini_directory_hosts_groups_and_vars():
    inv = load_inventory(FIXTURES / "ini_dir")
    assert list(inv.hosts) == ["lone", "kvm01", "kvm02", "kvm03", "kvm9", "r1", "r2"]
    assert inv.hosts["lone"].group_names == ["ungrouped"]
    assert inv.hosts["kvm01"].group_names == ["dc", "kvm"]
    assert inv.hosts["r2"].group_names == ["dc", "rack"]  # rack from hosts (INI) and more.yml
    kvm01, kvm02, kvm9 = (inv.hosts[h].vars for h in ("kvm01", "kvm02", "kvm9"))
    # the host line beats [kvm:vars] and group_vars/kvm/; host_vars beats the host line
    assert (kvm01["mtu"], kvm02["mtu"], kvm9["mtu"]) == (9000, 1280, 9100)
    assert kvm01["flag"] is True and kvm01["name"] == "quoted one"
    assert kvm01["list"] == [1, 2] and kvm01["text"] == "hello world"
    assert kvm9["ansible_port"] == 2222 and kvm9["note"] == "a b"
    assert kvm01["site"] == "par" and kvm01["zone"] == "a"
    assert "notes" not in kvm01  # notes.md is not an inventory source


@needs_ansible
def test_ini_directory_as_ansible_inventory_reads_it():
    source = FIXTURES / "ini_dir"
    assert our_view(load_inventory(source)) == ansible_view(ansible_list(source))


@needs_ansible
def test_several_sources_merge_as_in_ansible():
    sources = [FIXTURES / "ini_dir", FIXTURES / "second" / "inv.ini"]
    inv = load_inventory(sources)
    assert our_view(inv) == ansible_view(ansible_list(*sources))
    # the later source's group_vars/all.yml and [kvm:vars] win; its rack.yml beats
    # the first source's group_vars/kvm/ although kvm and rack are unrelated
    assert inv.hosts["kvm01"].vars["zone"] == "b"
    assert inv.hosts["kvm7"].vars["mtu"] == 9100


@needs_ansible
def test_list_json_reads_back_to_the_same_inventory(tmp_path):
    sources = [FIXTURES / "ini_dir", FIXTURES / "second" / "inv.ini"]
    printed = ansible_list(*sources)
    (tmp_path / "fleet.json").write_text(json.dumps(printed))
    assert our_view(load_inventory(tmp_path / "fleet.json")) == ansible_view(printed)


@needs_ansible
def test_group_vars_directories_of_files_in_a_directory_inventory(tmp_path):
    shutil.copytree(FIXTURES / "ini_dir", tmp_path / "inv")
    (tmp_path / "inv" / "group_vars" / "dc").mkdir()
    (tmp_path / "inv" / "group_vars" / "dc" / "a.yml").write_text("vlan: 10\nmtu: 1\n")
    (tmp_path / "inv" / "group_vars" / "dc" / "b.json").write_text('{"vlan": 20}')
    (tmp_path / "inv" / "host_vars" / "r1").mkdir()
    (tmp_path / "inv" / "host_vars" / "r1" / "x.yml").write_text("vlan: 30\n")
    (tmp_path / "inv" / "backup.bak").write_text("[nope]\nghost\n")
    inv = load_inventory(tmp_path / "inv")
    assert our_view(inv) == ansible_view(ansible_list(tmp_path / "inv"))
    assert (inv.hosts["kvm03"].vars["vlan"], inv.hosts["r1"].vars["vlan"]) == (20, 30)
    assert "ghost" not in inv.hosts


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[kvm]\nkvm1 10.0.0.1\n", 2, "expected key=value after the host name, got '10.0.0.1'"),
        ("[kvm]\nkvm1\n[kvm:vars]\nmtu\n", 4, "[kvm:vars]: expected key = value, got 'mtu'"),
        ("[kvm\nkvm1\n", 1, "invalid section header '[kvm'"),
        ("[kvm:host]\nkvm1\n", 1, "unknown type 'host'"),
        ('[kvm]\nkvm1 a="open\n', 2, "No closing quotation"),
        ("[x:vars]\na=1\n", 1, "section [x:vars] is for group 'x', which is declared nowhere"),
        ("[p:children]\n\nc\n", 3, "[p:children] names group 'c', which is declared nowhere"),
        ("[p:children]\nall\n[all]\n", 2, "'all' contains every group"),
        ("[bad,name]\nh\n", 1, "invalid group name 'bad,name'"),
        ("[kvm]\nkvm[1:x]\n", 2, "host range"),
    ],
)
def test_malformed_ini_names_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "hosts"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_inventory(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message


def test_ini_section_before_its_group_and_children_declared_later(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text("[kvm:vars]\nmtu=9000\n[dc:children]\nkvm\n[kvm]\nkvm1\n")
    inv = load_inventory(path)
    assert inv.hosts["kvm1"].vars == {"mtu": 9000}
    assert inv.hosts["kvm1"].group_names == ["dc", "kvm"]


def test_missing_source_says_it_is_the_inventory(tmp_path):
    with pytest.raises(InputError, match="inventory file or directory not found"):
        load_inventory([FIXTURES / "ini_dir", tmp_path / "nope"])


@needs_ansible
def test_ini_values_read_as_ansible_reads_them():
    source = FIXTURES / "ini_values" / "hosts"
    inv = load_inventory(source)
    assert our_view(inv) == ansible_view(ansible_list(source))
    h1 = inv.hosts["h1"].vars
    assert (h1["a"], h1["b"], h1["d"], h1["e"], h1["f"]) == ("yes", "010", 31, {"k": 1}, None)
    assert list(inv.hosts) == ["h1", "h2", "ha", "hb", "hc", "h0", "h3", "h6"]


def test_an_inventory_script_not_executable_is_named_as_such(tmp_path):
    (tmp_path / "inv").mkdir()
    script = tmp_path / "inv" / "ec2.py"
    script.write_text("#!/usr/bin/env python3\nimport json\nprint(json.dumps({}))\n")
    with pytest.raises(InputError) as info:
        load_inventory(tmp_path / "inv")
    assert str(info.value).startswith(f"{script}: an inventory script that is not executable")
    assert f"chmod +x {script}" in str(info.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"_meta": {"hostvars": "x"}}', "_meta.hostvars must be a mapping"),
        ('{"_meta": {}, "kvm": {"hosts": ["a"], "vars": [1]}}', "vars of group 'kvm'"),
        ('{"_meta": {"hostvars": {"a": 3}}}', "host 'a' must have a mapping"),
    ],
)
def test_malformed_list_json_is_refused_with_its_file(tmp_path, text, words):
    path = tmp_path / "fleet.json"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_inventory(path)
    assert str(info.value).startswith(f"{path}:") and words in str(info.value)
