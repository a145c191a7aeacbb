"""block / rescue / always while planning: a block's when, tags and vars on each task,
its keywords checked, a planned failure running its rescue (vnetctl.playbook.tasks)."""

from __future__ import annotations

from tests.unit.verb_plans import error, plan, results


def test_block_when_tags_and_vars_reach_each_task(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: all
          tasks:
            - block:
                - debug: {msg: "{{ who }}"}
                - block:
                    - debug: {msg: inner}
                  tags: [inner]
              when: mtu > 1500
              vars: {who: block}
              tags: [outer]
        """, tags=["inner"])  # fmt: skip
    assert [r["msg"] for r in results(plans, "kvm1")] == ["inner"]
    assert plans[0].tasks["kvm2"] == []
    plans = plan(tmp_path, "- hosts: kvm1\n  tasks: [{block: [{debug: {msg: '{{ who }}'}}],"
                           " vars: {who: block}}]\n")  # fmt: skip
    assert results(plans, "kvm1")[0]["msg"] == "block"


def test_block_keywords_checked(tmp_path):
    text = error(tmp_path, "- hosts: kvm1\n  tasks: [{block: [], ignore_errors: true}]\n")
    assert "block: unknown keyword 'ignore_errors'" in text and "fails its host" in text
    nested = """\
- hosts: kvm1
  tasks:
    - block:
        - block: [{debug: {msg: x}}]
          rescue: [{debug: {msg: y}}]
      always: [{debug: {msg: z}}]
"""
    assert "a block with rescue or always inside another one" in error(tmp_path, nested)


def test_a_planned_failure_in_a_block_runs_its_rescue_then_goes_on(tmp_path):
    plans = plan(tmp_path, """\
        - hosts: kvm1
          tasks:
            - block:
                - fail: {msg: first}
                - debug: {msg: not planned}
              rescue:
                - debug: {msg: rescue}
              always:
                - debug: {msg: always}
            - debug: {msg: after}
            - block:
                - assert: {that: false}
              always:
                - debug: {msg: always again}
            - debug: {msg: never}
        """)  # fmt: skip
    said = [(r["msg"], t.block[1] if t.block else None) for t, r in
            zip(plans[0].tasks["kvm1"], results(plans, "kvm1"), strict=True)]  # fmt: skip
    assert said == [("first", "block"), ("rescue", "rescue"), ("always", "always"),
                    ("after", None), ("Assertion failed", "block"),
                    ("always again", "always")]  # fmt: skip
