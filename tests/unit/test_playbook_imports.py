"""Sharing between playbooks: import_playbook, import_tasks/include_tasks, vars_files and
roles, with Ansible's meaning, and every bad one refused with file:line when loaded."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fake_catalog import CATALOG as MODULES

from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook

CATALOG = {**MODULES, "debug": {"msg": {"type": "raw"}}}


def files(root: Path, tree: dict[str, str]) -> None:
    for name, text in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    if not (root / "hosts.yml").exists():
        (root / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n    h2: {fast: true}\n")


def msgs(root: Path, book: str = "book.yml", **options) -> dict[str, list]:
    plays = load_playbook(root / book, CATALOG, roles=options.pop("roles", None))
    plans = plan_playbook(plays, load_inventory(root / "hosts.yml"), CATALOG, **options)
    return {f"{p.play.display_name}/{h}": [(t.name, t.args.get("msg")) for t in ts]
            for p in plans for h, ts in p.tasks.items()}  # fmt: skip


def load_error(root: Path, book: str = "book.yml", roles: str | None = None) -> str:
    with pytest.raises(InputError) as info:
        load_playbook(root / book, CATALOG, roles=roles)
    return str(info.value).replace(str(root) + "/", "")


def test_import_playbook_inserts_plays_with_its_vars_and_tags(tmp_path):
    files(tmp_path, {
        "book.yml": """\
            - hosts: h1
              name: first
              tasks: [{debug: {msg: one}}]
            - import_playbook: sub/other.yml
              vars: {a: from-import}
              tags: [imported]
            """,
        "sub/other.yml": """\
            - hosts: h1
              name: second
              vars: {a: own, b: own}
              vars_files: [vf.yml]
              tasks: [{debug: {msg: "{{ a }} {{ b }}"}}]
            """,
        "sub/vf.yml": "b: file\n",
    })  # fmt: skip
    assert msgs(tmp_path) == {"first/h1": [("debug", "one")],
                              "second/h1": [("debug", "from-import file")]}  # fmt: skip
    assert msgs(tmp_path, tags=["imported"]) == {
        "first/h1": [],
        "second/h1": [("debug", "from-import file")],
    }


def test_tasks_run_pre_tasks_roles_tasks_post_tasks(tmp_path):
    files(tmp_path, {
        "book.yml": """\
            - hosts: h1
              post_tasks: [{debug: {msg: post}}]
              tasks: [{debug: {msg: task}}]
              roles: [r]
              pre_tasks: [{debug: {msg: pre}}]
            """,
        "roles/r/tasks/main.yml": "- debug: {msg: role}\n",
    })  # fmt: skip
    shown = [m for _, m in msgs(tmp_path)["h1/h1"]]
    assert shown == ["pre", "role", "task", "post"]


def test_import_tasks_tags_are_inherited_include_tasks_tags_select_the_include(tmp_path):
    """As ansible-playbook: `--tags outer` runs an import's tasks (they inherit `outer`)
    but not an include's (its tags are the include's own); `--tags inner` runs the
    import's inner task but nothing of the include (the include itself is not kept)."""
    files(tmp_path, {
        "book.yml": """\
            - hosts: h1
              tasks:
                - import_tasks: inc.yml
                  vars: {x: import}
                  tags: [outer]
                - include_tasks: inc.yml
                  vars: {x: include}
                  tags: [outer]
            """,
        "inc.yml": "- debug: {msg: '{{ x }}'}\n  tags: [inner]\n",
    })  # fmt: skip
    assert msgs(tmp_path)["h1/h1"] == [("debug", "import"), ("debug", "include")]
    assert msgs(tmp_path, tags=["outer"])["h1/h1"] == [("debug", "import")]
    assert msgs(tmp_path, tags=["inner"])["h1/h1"] == [("debug", "import")]
    assert msgs(tmp_path, skip_tags=["inner"])["h1/h1"] == []


def test_the_when_of_an_import_or_a_role_applies_to_each_of_its_tasks(tmp_path):
    files(tmp_path, {
        "book.yml": """\
            - hosts: all
              roles: [{role: r, when: fast is defined}]
              tasks:
                - import_tasks: inc.yml
                  when: inventory_hostname == 'h1'
            """,
        "inc.yml": "- debug: {msg: a}\n- debug: {msg: b}\n",
        "roles/r/tasks/main.yml": "- name: fast\n  debug: {msg: r}\n",
    })  # fmt: skip
    shown = msgs(tmp_path)
    assert shown["all/h1"] == [("debug", "a"), ("debug", "b")]
    assert shown["all/h2"] == [("r : fast", "r")]


def test_roles_beside_the_playbook_on_the_roles_path_and_by_path(tmp_path, monkeypatch):
    files(tmp_path, {
        "play/book.yml": """\
            - hosts: h1
              roles: [here, shared, ../elsewhere/byhand, here]
            """,
        "play/roles/here/tasks/main.yml": "- debug: {msg: here}\n",
        "site-roles/shared/tasks/main.yml": "- debug: {msg: shared}\n",
        "elsewhere/byhand/tasks/main.yml": "- debug: {msg: byhand}\n",
    })  # fmt: skip
    book = "play/book.yml"
    expected = [("here : debug", "here"), ("shared : debug", "shared"),
                ("byhand : debug", "byhand")]  # fmt: skip
    assert msgs(tmp_path, book, roles=str(tmp_path / "site-roles"))["h1/h1"] == expected
    monkeypatch.setenv("VNETCTL_ROLES_PATH", f"/nonexistent:{tmp_path / 'site-roles'}")
    assert msgs(tmp_path, book)["h1/h1"] == expected
    monkeypatch.delenv("VNETCTL_ROLES_PATH")
    monkeypatch.setenv("ANSIBLE_ROLES_PATH", str(tmp_path / "site-roles"))
    assert msgs(tmp_path, book)["h1/h1"] == expected


def test_a_role_used_twice_with_other_vars_runs_twice(tmp_path):
    files(tmp_path, {
        "book.yml": """\
            - hosts: h1
              roles:
                - {role: r, vars: {x: one}}
                - {role: r, vars: {x: two}}
                - {role: r, vars: {x: one}}
            """,
        "roles/r/tasks/main.yml": "- debug: {msg: '{{ x }}'}\n",
    })  # fmt: skip
    assert [m for _, m in msgs(tmp_path)["h1/h1"]] == ["one", "two"]


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        ({"book.yml": "- import_playbook: book.yml\n"},
         "book.yml:1: import_playbook: import cycle: book.yml -> book.yml"),
        ({"book.yml": "- import_playbook: a.yml\n", "a.yml": "- import_playbook: book.yml\n"},
         "a.yml:1: import_playbook: import cycle: book.yml -> a.yml -> book.yml"),
        ({"book.yml": "- import_playbook: '{{ x }}.yml'\n"},
         "book.yml:1: import_playbook: the file name must be written out ('{{ x }}.yml' is a "
         "template): vnetctl reads every file when it loads the playbook, before any host"),
        ({"book.yml": "- import_playbook: a.yml\n  when: x\n"},
         "book.yml:2: import_playbook: unknown keyword 'when': put the condition on the "
         "imported plays' tasks, or use --limit"),
        ({"book.yml": "- hosts: all\n  tasks:\n    - import_tasks: a.yml\n",
          "a.yml": "- include_tasks: b.yml\n", "b.yml": "- import_tasks: a.yml\n"},
         "b.yml:1: play 'all': import_tasks: import cycle: a.yml -> b.yml -> a.yml"),
        ({"book.yml": "- hosts: all\n  tasks:\n    - include_tasks: nope.yml\n"},
         "book.yml:3: play 'all': include_tasks: nope.yml: no such file"),
        ({"book.yml": "- hosts: all\n  tasks:\n    - include_tasks: a.yml\n      loop: [1]\n",
          "a.yml": "[]\n"},
         "book.yml:4: play 'all': include_tasks: unknown keyword 'loop': loop over the tasks "
         "inside the file instead: vnetctl reads task files once, before any host"),
        ({"book.yml": "- hosts: all\n  tasks:\n    - include_tasks: a.yml\n", "a.yml": "a: 1\n"},
         "a.yml:1: play 'all': a task file is a list of tasks, got a mapping"),
        ({"book.yml": "- hosts: all\n  vars_files: [nope.yml]\n"},
         "book.yml:2: play 'all': vars_files: nope.yml: no such file"),
        ({"book.yml": "- hosts: all\n  vars_files: [vf.yml]\n", "vf.yml": "- a\n"},
         "vf.yml:1: play 'all': a vars file must be a mapping of variables, got a list"),
        ({"book.yml": "- hosts: all\n  vars_files: [vf.yml]\n", "vf.yml": "a-b: 1\n"},
         "vf.yml:1: play 'all': a vars file: the variable name on this line is not usable in "
         "templates (letters, digits, _) (not shown: a file of variables may hold secrets)"),
        ({"book.yml": "- hosts: all\n  vars_files: [[a.yml, b.yml]]\n"},
         "book.yml:2: play 'all': vars_files: a list of candidate files (the first found) is "
         "not supported: name one file"),
        ({"book.yml": "- hosts: all\n  roles:\n    - nope\n"},
         "book.yml:3: play 'all': role 'nope' not found (looked in roles/nope, "
         "nope; more directories with --roles-path or VNETCTL_ROLES_PATH)"),
        ({"book.yml": "- hosts: all\n  roles:\n    - {role: r, mtu: 9000}\n",
          "roles/r/tasks/main.yml": "[]\n"},
         "book.yml:3: play 'all': role 'r': unknown key 'mtu': role parameters go under "
         "`vars:` (`vars: {mtu: ...}`)"),
        ({"book.yml": "- hosts: all\n  roles: [r]\n", "roles/r/meta/main.yml":
          "dependencies: [base]\n"},
         "roles/r/meta/main.yml:1: role 'r': role dependencies are not supported: list the "
         "roles it depends on before it under the play's roles:"),
        ({"book.yml": "- hosts: all\n  roles: [r]\n", "roles/r/defaults/main.yml": "[1]\n"},
         "roles/r/defaults/main.yml:1: role 'r': defaults/main.yml must be a mapping of "
         "variables, got a list"),
        ({"book.yml": "- hosts: all\n  roles: [r]\n",
          "roles/r/tasks/main.yml": "- link: {name: eth1}\n  notify: x\n"},
         "roles/r/tasks/main.yml:2: play 'all' task 'r : link': unknown task keyword "
         "'notify': vnetctl has no handlers: a task that changes reports it"),
        ({"book.yml": "- hosts: all\n  handlers: []\n"},
         "book.yml:2: unknown play keyword 'handlers': vnetctl has no handlers: a task that "
         "changes reports it"),
    ],
)  # fmt: skip
def test_bad_imports_roles_and_vars_files_are_refused_with_file_and_line(tmp_path, tree, expected):
    files(tmp_path, tree)
    message = load_error(tmp_path)
    message = message.replace(str(tmp_path), "")
    assert message == expected
