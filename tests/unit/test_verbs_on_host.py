"""`command`, `register`, conditions on registered results and block/rescue/always, in
a real host process (this machine's, as a host starts it), planned by the controller:
the commands are harmless (`sh -c 'echo UP; exit 3'`, `false`)."""

from __future__ import annotations

import textwrap

from host_process import host_process, records_until_done

from vnetctl.catalog import Catalog
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.runner.payload import LockSpec, build_stdin, task_record, unpack

CATALOG = Catalog()
BOOK = """\
- hosts: kvm1
  tasks:
    - command: {argv: [sh, -c, "echo UP; exit 3"]}
      register: probe
      failed_when: probe.rc not in [0, 3]
      changed_when: false
    - debug: {msg: probe-ok}
      when: "'UP' in probe.stdout and probe.rc == 3"
    - debug: {msg: never}
      when: probe.rc == 0
    - block:
        - command: {argv: ["false"]}
        - debug: {msg: not reached}
      rescue:
        - assert: {that: probe is succeeded, success_msg: rescued}
      always:
        - debug: {msg: always}
    - command: {argv: ["true"], creates: /}
    - block:
        - fail: {msg: planned failure}
      rescue:
        - debug: {msg: second rescue}
    - name: after
      command: {argv: ["true"]}
"""


def run(tmp_path, check: bool) -> list[dict]:
    (tmp_path / "hosts.yml").write_text("all: {hosts: {kvm1: {}}}\n")
    (tmp_path / "book.yml").write_text(textwrap.dedent(BOOK))
    plans = plan_playbook(load_playbook(tmp_path / "book.yml", CATALOG),
                          load_inventory(tmp_path / "hosts.yml"), CATALOG)  # fmt: skip
    tasks = [task_record(t) for t in plans[0].tasks["kvm1"]]
    lock = LockSpec(wait=1, directory=str(tmp_path))
    with host_process(build_stdin(CATALOG, tasks, check=check, lock=lock)) as proc:
        return [r for r in records_until_done(proc) if "start" not in r]


def outcome(record: dict) -> tuple:
    if "rescued" in record:
        return ("rescued", record["rescued"])
    result = record.get("result")
    if result is None:
        return tuple(record)
    state = "failed" if result["failed"] else "skipped" if result.get("skipped") else (
        "changed" if result["changed"] else "ok")  # fmt: skip
    return (record["index"], state, result["msg"])


def test_register_when_and_rescue_on_the_host(tmp_path):
    records = [outcome(r) for r in run(tmp_path, check=False)]
    assert records == [
        (0, "ok", "rc=3 (failed_when does not hold)"),
        (1, "ok", "probe-ok"),
        (2, "skipped", "skipped: its condition does not hold"),
        (3, "failed", "non-zero return code 1: "),
        (4, "skipped", "skipped: an earlier task of its block failed"),
        (5, "ok", "rescued"),
        (6, "ok", "always"),
        ("rescued", [3]),
        (7, "ok", "did not run: / exists"),
        (8, "failed", "planned failure"),
        (9, "ok", "second rescue"),
        ("rescued", [8]),
        (10, "changed", "rc=0"),
        ("done", "stopped"),
    ]


def test_check_mode_runs_no_command(tmp_path):
    records = {r["index"]: r["result"] for r in run(tmp_path, check=True) if "index" in r}
    assert records[0]["skipped"] and records[0]["msg"] == "skipped in check mode (it would run)"
    assert records[1]["msg"] == "skipped: probe was skipped"  # reads a command check skipped
    assert records[3]["skipped"] and records[10]["skipped"]  # nothing failed, nothing ran
    assert records[4]["msg"] == "not reached" and records[7]["msg"] == "did not run: / exists"


def test_conditions_are_shipped_only_to_plays_that_need_them():
    plain = [{"index": 0, "module": "link", "args": {"name": "lo"}}]
    blocky = [dict(plain[0], block=[1, "block", True])]
    sizes = [len(build_stdin(CATALOG, tasks, check=True)) for tasks in (plain, blocky)]
    assert (
        "vnet_conditions"
        not in unpack(build_stdin(CATALOG, plain, check=True).split("\n")[1])["code"]
    )
    assert sizes[1] - sizes[0] > 6000  # ~9 KB of every host's stdin a plain play does without


LOOP_BOOK = """\
- hosts: kvm1
  tasks:
    - command: {argv: [sh, -c, "exit {{ item }}"]}
      loop: [0, 3]
      register: probe
      failed_when: false
    - command: {argv: ["true"]}
      when: probe.results[1].rc == 3 and probe is changed and probe.results | length == 2
"""


def test_register_on_a_loop_on_the_host(tmp_path):
    (tmp_path / "hosts.yml").write_text("all: {hosts: {kvm1: {}}}\n")
    (tmp_path / "book.yml").write_text(LOOP_BOOK)
    plans = plan_playbook(load_playbook(tmp_path / "book.yml", CATALOG),
                          load_inventory(tmp_path / "hosts.yml"), CATALOG)  # fmt: skip
    tasks = [task_record(t) for t in plans[0].tasks["kvm1"]]
    lock = LockSpec(wait=1, directory=str(tmp_path))
    with host_process(build_stdin(CATALOG, tasks, check=False, lock=lock)) as proc:
        records = [outcome(r) for r in records_until_done(proc) if "index" in r]
    assert [state for _, state, _ in records] == ["changed", "changed", "changed"]
