"""Inventories: Ansible's YAML format, group_vars/host_vars, precedence, errors, connections."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vnetctl.errors import InputError
from vnetctl.inventory.connection import ConnectionSpec
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.secrets import Secret

ROOT = Path(__file__).parents[2]
ANSIBLE_INVENTORY = ROOT / ".venv-ansible" / "bin" / "ansible-inventory"
CATALOG = {"debug": {"msg": {"type": "raw"}}}


def write(base: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return base / next(iter(files))


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load_inventory(path)
    return info.value


# --- the example fleet shipped in inventory/ ---------------------------------------------


def test_example_inventory_groups_hosts_and_vars():
    inv = load_inventory(ROOT / "inventory" / "example.yml")
    assert list(inv.hosts) == ["r1-kvm01", "r1-kvm02", "r2-kvm01", "r2-kvm02"]
    assert inv.groups["kvm"].children == ["rack1", "rack2"]
    assert inv.groups["kvm"].hosts == list(inv.hosts)
    assert inv.groups["storage"].hosts == ["r1-kvm02", "r2-kvm02"]
    r2 = inv.hosts["r2-kvm02"]
    assert r2.group_names == ["kvm", "rack2", "storage"]
    assert r2.vars["uplink"] == "eth2"  # group_vars/rack2/ (a directory) beats kvm's vars
    assert r2.vars["vm_mtu"] == 9000
    assert inv.hosts["r1-kvm02"].vars["vm_mtu"] == 1500  # host_vars/r1-kvm02.yml
    assert inv.hosts["r1-kvm01"].vars["uplink"] == "eth1"
    spec = ConnectionSpec.from_host(r2)
    assert (spec.address, spec.port, spec.user) == ("10.213.2.12", 2222, "root")


# --- structure ---------------------------------------------------------------------------


MIXED = """\
all:
  hosts:
    loner:
    kvm1: {uplink: eth1}
  children:
    kvm:
      hosts:
        kvm1:
        kvm[2:3]:
    web:
      hosts:
        web-[a:b]:
        kvm1: {role: both}
standalone:
  hosts:
    node[08:10]:
    port1:2222:
    port2:2222: {ansible_port: 22}
"""


def test_hosts_null_or_vars_several_groups_ranges_and_ungrouped(tmp_path):
    inv = load_inventory(write(tmp_path, {"hosts.yml": MIXED}))
    assert list(inv.hosts) == [
        "loner", "kvm1", "kvm2", "kvm3", "web-a", "web-b", "node08", "node09", "node10",
        "port1", "port2",
    ]  # fmt: skip
    assert inv.hosts["port1"].vars == {"ansible_port": 2222}
    assert inv.hosts["port2"].vars == {"ansible_port": 22}  # its own vars win, as in Ansible
    assert inv.hosts["kvm1"].vars == {"uplink": "eth1", "role": "both"}
    assert inv.hosts["kvm1"].group_names == ["kvm", "web"]
    assert inv.hosts["loner"].group_names == ["ungrouped"]  # as Ansible does
    assert inv.groups["ungrouped"].hosts == ["loner"]
    assert inv.groups["all"].children == ["kvm", "web", "standalone", "ungrouped"]
    assert inv.groups["standalone"].hosts[-2:] == ["port1", "port2"]
    assert inv.groups["standalone"].parents == ["all"]
    assert inv.magic_vars("kvm2")["inventory_hostname"] == "kvm2"
    assert inv.group_map()["web"] == ["kvm1", "web-a", "web-b"]


def test_nested_groups_depth_and_descendant_hosts_in_inventory_order(tmp_path):
    inv = load_inventory(
        write(
            tmp_path,
            {
                "hosts.yml": "all:\n  children:\n    kvm:\n      children:\n"
                "        rack2:\n          hosts: {b: , a: }\n"
                "        rack1:\n          hosts: {c: , a: }\n"
                "    rack1:\n      vars: {x: 1}\n"
            },
        )
    )
    assert inv.groups["kvm"].hosts == ["b", "a", "c"]
    assert (inv.groups["kvm"].depth, inv.groups["rack1"].depth) == (1, 2)
    assert inv.groups["rack1"].vars == {"x": 1}
    assert inv.hosts["a"].groups == ["all", "kvm", "rack1", "rack2"]


# --- precedence: one test per layer -------------------------------------------------------

# Layer k sets the variables v1 .. v10 from vk on, so vk must come from layer k: the
# highest layer that sets it. Layers 9 and 10 are the play's vars and -e.
LAYERS = [
    "all_inventory",
    "parent_group_inventory",
    "child_group_inventory",
    "group_vars_all",
    "group_vars_parent",
    "group_vars_child",
    "host_inventory",
    "host_vars_file",
    "play_vars",
    "extra_vars",
]


def staircase(k: int, indent: str) -> str:
    return "".join(f"{indent}v{i}: {LAYERS[k - 1]}\n" for i in range(k, 11))


def staircase_inventory(base: Path) -> Path:
    return write(
        base,
        {
            "inv/hosts.yml": "all:\n  vars:\n" + staircase(1, "    ") + "  children:\n"
            "    kvm:\n      vars:\n" + staircase(2, "        ") + "      children:\n"
            "        rack1:\n          vars:\n"
            + staircase(3, "            ")
            + "          hosts:\n"
            "            kvm1:\n" + staircase(7, "              ") + "            kvm2:\n",
            "inv/group_vars/all.yml": staircase(4, ""),
            "inv/group_vars/kvm.yml": staircase(5, ""),
            "inv/group_vars/rack1/main.yml": staircase(6, ""),
            "inv/host_vars/kvm1.yml": staircase(8, ""),
        },
    )


@pytest.mark.parametrize("k", range(1, 11), ids=LAYERS)
def test_precedence_layer(tmp_path, k):
    inventory = load_inventory(staircase_inventory(tmp_path))
    book = write(
        tmp_path,
        {
            "book.yml": "- hosts: kvm1\n  vars:\n"
            + staircase(9, "    ")
            + "  tasks:\n    - debug: {msg: '{{ v"
            + str(k)
            + " }}'}\n"
        },
    )
    extra = {f"v{i}": "extra_vars" for i in range(10, 11)}
    plan = plan_playbook(load_playbook(book, CATALOG), inventory, CATALOG, extra_vars=extra)
    assert plan[0].tasks["kvm1"][0].args["msg"] == LAYERS[k - 1]
    if k <= 8:
        assert inventory.hosts["kvm1"].vars[f"v{k}"] == LAYERS[k - 1]


def test_precedence_origins_name_the_file_and_line(tmp_path):
    inv = load_inventory(staircase_inventory(tmp_path))
    origins = inv.hosts["kvm1"].origins
    assert str(origins["v8"]) == f"{tmp_path}/inv/host_vars/kvm1.yml:1"
    assert str(origins["v6"]).startswith(f"{tmp_path}/inv/group_vars/rack1/main.yml:")


def test_group_vars_file_beats_deeper_groups_inventory_vars_as_ansible_does(tmp_path):
    inv = load_inventory(
        write(
            tmp_path,
            {
                "hosts.yml": "all:\n  children:\n    kvm:\n      children:\n"
                "        rack1:\n          vars: {mtu: 1500}\n          hosts: {h: }\n",
                "group_vars/all.yml": "mtu: 9000\n",
            },
        )
    )
    assert inv.hosts["h"].vars["mtu"] == 9000


def test_same_depth_groups_by_name_then_ansible_group_priority(tmp_path):
    inv = load_inventory(
        write(
            tmp_path,
            {
                "hosts.yml": "all:\n  children:\n"
                "    zz: {vars: {a: zz, b: zz}, hosts: {h: }}\n"
                "    aa: {vars: {a: aa, b: aa, ansible_group_priority: 5}, hosts: {h: }}\n"
                "    mm: {vars: {a: mm}, hosts: {h: }}\n"
            },
        )
    )
    # by name zz is last; priority 5 puts aa after both
    assert inv.hosts["h"].vars == {"a": "aa", "b": "aa"}
    assert inv.groups["aa"].priority == 5 and "ansible_group_priority" not in inv.groups["aa"].vars


def test_vars_file_lookup_first_found_and_directory_order(tmp_path):
    inv = load_inventory(
        write(
            tmp_path,
            {
                "hosts.yml": "all:\n  children:\n    kvm: {hosts: {h: }}\n"
                "    web: {hosts: {h: }}\n",
                "group_vars/kvm": "a: noext\n",  # found first: kvm.yml is not read
                "group_vars/kvm.yml": "a: yml\nb: yml\n",
                "group_vars/web/10.yml": "c: ten\nd: ten\n",
                "group_vars/web/20.json": '{"c": "twenty"}',
                "group_vars/web/.hidden.yml": "d: hidden\n",
                "group_vars/web/notes.txt": "d: txt\n",
                "group_vars/nothere.yml": "e: never\n",
            },
        )
    )
    assert inv.hosts["h"].vars == {"a": "noext", "c": "twenty", "d": "ten"}


@pytest.mark.skipif(not ANSIBLE_INVENTORY.exists(), reason="needs .venv-ansible (setup.sh)")
def test_precedence_matches_ansible_inventory(tmp_path):
    path = staircase_inventory(tmp_path)
    out = subprocess.run(
        [str(ANSIBLE_INVENTORY), "-i", str(path), "--host", "kvm1"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert load_inventory(path).hosts["kvm1"].vars == json.loads(out.stdout)


# --- bad input: file:line ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("all:\n  children:\n    kvm: [a, b]\n", 3, "group 'kvm' must be a mapping"),
        ("all:\n  host:\n    a:\n", 2, "unknown key 'host' (did you mean 'hosts'?)"),
        ("all:\n  hosts: [kvm1, kvm2]\n", 2, "hosts of group 'all' must be a mapping"),
        ("all:\n  hosts:\n    kvm1: 10.0.0.1\n", 3, "{ansible_host: ...}"),
        ("all:\n  hosts:\n    kvm1:\n    kvm1:\n", 4, "duplicate key 'kvm1'"),
        ("all:\n  hosts:\n    kvm1: {a: [1, 2}\n", 3, "YAML syntax error"),
        ("all:\n  vars: [a]\n", 2, "vars of group 'all' must be a mapping"),
        ("a:\n  children:\n    b:\n      children:\n        a:\n", 5, "own ancestor"),
        ("[kvm]\nkvm1 10.0.0.1\n", 2, "expected key=value after the host name"),
        ("# hosts\n[kvm:bad]\nkvm1\n", 2, "has unknown type 'bad'"),
        ("- kvm1\n- kvm2\n", 1, "expected a YAML inventory"),
        ("plugin: aws_ec2\n", 1, "inventory plugins are not supported"),
        ("", 1, "inventory is empty"),
        ("all:\n  children:\n    bad group:\n", 3, "invalid group name"),
        ("all:\n  hosts:\n    h[1:x]:\n", 3, "host range"),
    ],
)
def test_bad_inventory_errors_name_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path, {"hosts.yml": text})
    message = str(error_of(path))
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message


def test_bad_group_vars_file_names_that_file(tmp_path):
    path = write(
        tmp_path,
        {"hosts.yml": "all:\n  hosts: {h: }\n", "group_vars/all.yml": "- not\n- a mapping\n"},
    )
    message = str(error_of(path))
    assert message.startswith(f"{tmp_path}/group_vars/all.yml:1: ")
    assert "must be a mapping of variables" in message


def test_missing_inventory_file(tmp_path):
    assert "inventory file or directory not found" in str(error_of(tmp_path / "nope.yml"))


# --- connections -------------------------------------------------------------------------


def test_connection_defaults_and_ansible_names():
    spec = ConnectionSpec.from_vars("kvm1", {})
    assert spec == ConnectionSpec(name="kvm1", address="kvm1")
    assert (spec.port, spec.user, spec.python, spec.connect_timeout) == (
        None, None, "/usr/bin/python3", 10.0,
    )  # fmt: skip
    spec = ConnectionSpec.from_vars(
        "kvm1",
        {
            "ansible_ssh_host": "10.213.0.9",
            "ansible_port": "2222",
            "ansible_ssh_user": "ops",
            "ansible_private_key_file": "~/k",
            "ansible_become": "yes",
            "ansible_become_user": "admin",
            "ansible_timeout": 3,
        },
    )
    assert (spec.address, spec.port, spec.user, spec.become, spec.become_user) == (
        "10.213.0.9", 2222, "ops", True, "admin",
    )  # fmt: skip
    assert spec.key_file == str(Path("~/k").expanduser()) and spec.connect_timeout == 3.0


def test_a_hosts_play_timeout_is_a_duration_as_the_timeout_option_is():
    """`vnetctl_timeout: 15m` means what `--timeout 15m` means (one parser of durations)."""
    assert ConnectionSpec.from_vars("kvm1", {"vnetctl_timeout": "15m"}).play_timeout == 900.0
    assert ConnectionSpec.from_vars("kvm1", {"vnetctl_timeout": 90}).play_timeout == 90.0


def test_vnetctl_names_beat_ansible_names():
    spec = ConnectionSpec.from_vars(
        "kvm1",
        {
            "ansible_host": "a", "vnetctl_host": "v", "ansible_port": 1, "vnetctl_port": 2,
            "vnetctl_transport": "paramiko", "vnetctl_known_hosts": "/kh",
            "ansible_python_interpreter": "/a/python", "vnetctl_python_interpreter": "/v/py",
        },
    )  # fmt: skip
    assert (spec.address, spec.port, spec.transport, spec.known_hosts, spec.python) == (
        "v", 2, "paramiko", "/kh", "/v/py",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("ansible_port", "ssh", "expected a port number"),
        ("ansible_port", 70000, "expected a port number"),
        ("ansible_port", True, "expected a port number"),
        ("vnetctl_transport", "telnet", "unknown transport 'telnet'"),
        ("ansible_become", "perhaps", "expected true or false"),
        ("ansible_timeout", "soon", "number of seconds"),
        ("ansible_host", ["a"], "expected a string"),
    ],
)
def test_bad_connection_vars_name_host_variable_and_line(tmp_path, var, value, words):
    path = write(
        tmp_path, {"hosts.yml": f"all:\n  hosts:\n    kvm1:\n      {var}: {json.dumps(value)}\n"}
    )
    with pytest.raises(InputError) as info:
        ConnectionSpec.from_host(load_inventory(path).hosts["kvm1"])
    assert str(info.value).startswith(f"{path}:4: host kvm1: variable {var}: ")
    assert words in str(info.value)


def test_connection_vars_may_be_templates(tmp_path):
    path = write(
        tmp_path,
        {"hosts.yml": "all:\n  vars:\n    ansible_host: '10.213.0.{{ octet }}'\n"
         "  hosts:\n    kvm1: {octet: 7}\n"},
    )  # fmt: skip
    assert ConnectionSpec.from_host(load_inventory(path).hosts["kvm1"]).address == "10.213.0.7"


def test_passwords_never_shown(tmp_path):
    path = write(
        tmp_path,
        {"hosts.yml": "all:\n  hosts:\n    kvm1:\n      ansible_password: hunter2\n"
         "      ansible_become_pass: sudo-secret\n"},
    )  # fmt: skip
    host = load_inventory(path).hosts["kvm1"]
    spec = ConnectionSpec.from_host(host)
    assert isinstance(spec.password, Secret) and spec.password.reveal() == "hunter2"
    assert spec.become_password is not None and spec.become_password.reveal() == "sudo-secret"
    assert repr(spec.password) == "'***'" and str(spec.password) == "***"
    shown = [repr(spec), str(spec), f"{spec}", repr(host), str(host), repr(spec.password)]
    for text in shown:
        assert "hunter2" not in text and "sudo-secret" not in text
    assert "password='***'" in repr(spec)
