"""Variable precedence, against the README's table: for each level, a variable set at
that level and at every level before it takes that level's value. The order was read
off ansible-playbook (ansible-core 2.19) on the same files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from fake_catalog import CATALOG as MODULES

from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook

ROOT = Path(__file__).parents[2]
CATALOG = {**MODULES, "debug": {"msg": {"type": "raw"}}}


def readme_levels() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- precedence: begin -->(.*?)<!-- precedence: end -->", text, re.S)
    assert block, "the README has no precedence table"
    rows = [line for line in block.group(1).splitlines() if line.startswith("| ")]
    return [row.split("|")[1].strip() for row in rows[1:]]  # the header row is not a level


LEVELS = readme_levels()


def write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def workspace(tmp: Path, upto: int) -> tuple[Path, Path, dict]:
    """x set at every level up to LEVELS[upto]; the task reading it is in a role, inside an
    include_tasks, inside an import_tasks, with a loop, so that every level applies."""
    on = {name: (name if i <= upto else None) for i, name in enumerate(LEVELS)}
    unknown = set(on) - set(SETTERS)
    assert not unknown, f"the README names levels this test does not know: {unknown}"

    def var(level: str) -> dict:
        return {"x": on[level]} if on[level] else {}

    write(tmp / "inv" / "hosts.yml", {"all": {
        "vars": var("inventory all vars"),
        "children": {"g": {"vars": var("inventory group vars"),
                           "hosts": {"h1": var("inventory host vars") or None}}},
    }})  # fmt: skip
    write(tmp / "inv" / "group_vars" / "all.yml", var("group_vars/all"))
    write(tmp / "inv" / "group_vars" / "g.yml", var("group_vars/GROUP"))
    write(tmp / "inv" / "host_vars" / "h1.yml", var("host_vars/HOST"))
    write(tmp / "vf.yml", var("play vars_files"))
    role = tmp / "roles" / "r"
    write(role / "defaults" / "main.yml", var("role defaults"))
    write(role / "vars" / "main.yml", var("role vars"))
    write(
        role / "tasks" / "main.yml", [{"include_tasks": "inc.yml", "vars": var("include params")}]
    )
    write(role / "tasks" / "inc.yml", [{"import_tasks": "imp.yml", "vars": var("block vars")}])
    probe = {"name": "probe", "debug": {"msg": "{{ x }}"}, "vars": var("task vars")}
    if on["loop variables"]:
        probe.update(loop=["loop variables"], loop_control={"loop_var": "x"})
    before = []  # the verbs that set variables for the host's later tasks
    if on["include_vars"]:
        write(role / "vars" / "iv.yml", var("include_vars"))
        before.append({"include_vars": "iv.yml"})
    if on["set_fact and register"]:
        before.append({"set_fact": var("set_fact and register")})
    write(role / "tasks" / "imp.yml", [*before, probe])
    entry = {"role": "r", "vars": var("block vars")}
    write(tmp / "book.yml", [{"hosts": "all", "vars": var("play vars"),
                              "vars_files": ["vf.yml"], "roles": [entry]}])  # fmt: skip
    return tmp / "book.yml", tmp / "inv" / "hosts.yml", var("extra vars")


SETTERS = {  # every level the workspace can set (names as the README writes them)
    "role defaults", "inventory all vars", "inventory group vars", "group_vars/all",
    "group_vars/GROUP", "inventory host vars", "host_vars/HOST", "play vars",
    "play vars_files", "role vars", "block vars", "task vars", "include_vars",
    "set_fact and register", "include params", "extra vars", "loop variables",
}  # fmt: skip


def value_of_x(tmp: Path, upto: int):
    book, hosts, extra = workspace(tmp, upto)
    plans = plan_playbook(
        load_playbook(book, CATALOG), load_inventory(hosts), CATALOG, extra_vars=extra
    )
    (task,) = [t for t in plans[0].tasks["h1"] if "probe" in t.name]
    return task.result["msg"]


def test_the_readme_lists_every_level_once():
    assert sorted(LEVELS) == sorted(SETTERS) and len(LEVELS) == len(set(LEVELS))


@pytest.mark.parametrize("upto", range(len(LEVELS)), ids=LEVELS)
def test_each_level_wins_over_every_level_before_it(tmp_path, upto):
    assert value_of_x(tmp_path, upto) == LEVELS[upto]


ROLES_BOOK = """\
- hosts: all
  roles: [ra, rb]
  tasks:
    - name: play task
      debug: {msg: "{{ d }} {{ v }}"}
"""


def test_every_roles_variables_reach_the_play_and_a_roles_own_win_in_its_tasks(tmp_path):
    """As ansible-playbook: the play's tasks see every role's defaults and vars (a later
    role's win), and a role's own tasks see its own over the other roles'."""
    for role in ("ra", "rb"):
        write(tmp_path / "roles" / role / "defaults" / "main.yml", {"d": f"{role}-default"})
        write(tmp_path / "roles" / role / "vars" / "main.yml", {"v": f"{role}-vars"})
        write(tmp_path / "roles" / role / "tasks" / "main.yml",
              [{"name": "own", "debug": {"msg": "{{ d }} {{ v }}"}}])  # fmt: skip
    write(tmp_path / "hosts.yml", {"all": {"hosts": {"h1": None}}})
    (tmp_path / "book.yml").write_text(ROLES_BOOK)
    plans = plan_playbook(load_playbook(tmp_path / "book.yml", CATALOG),
                          load_inventory(tmp_path / "hosts.yml"), CATALOG)  # fmt: skip
    shown = [(t.name, t.args["msg"]) for t in plans[0].tasks["h1"]]
    assert shown == [
        ("ra : own", "ra-default ra-vars"),
        ("rb : own", "rb-default rb-vars"),
        ("play task", "rb-default rb-vars"),
    ]
