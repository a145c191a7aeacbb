"""`vnetctl COMMAND` imports that command's code alone: a run's controller CPU is spent
on hosts, not on loading drift, trace or lab code (~65 ms a run), nor the console's
(rich, ~25 ms) when the output is JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vnetctl.cli.main import COMMANDS, build_parser, parse_args

RUN = ["run", "playbooks/site.yml", "-i", "inventory/lab.yml", "--forks", "7", "--check"]


def test_a_run_imports_no_other_command():
    code = (
        "import sys, json; from vnetctl.cli.main import parse_args; "
        f"parse_args({RUN!r}); print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    loaded = set(json.loads(done.stdout))
    assert "vnetctl.cli.run_cmd" in loaded
    others = {f"vnetctl.cli.{name}_cmd" for name in COMMANDS if name != "run"}
    assert not others & loaded
    assert not {m for m in loaded if m.startswith(("vnetctl.drift", "vnetctl.trace"))}
    assert not {m for m in loaded if m.startswith("rich")}  # the console: not for --format json
    # what only some runs need: worker processes, an ansible.cfg, a confirmation's id
    assert not {"multiprocessing", "configparser", "uuid"} & loaded


def test_a_command_parses_as_it_does_with_every_command_known():
    args = parse_args(RUN)
    full = build_parser().parse_args(RUN)
    full.argv = list(RUN)
    assert vars(args).keys() == vars(full).keys()
    assert {k: v for k, v in vars(args).items() if k != "func"} == {
        k: v for k, v in vars(full).items() if k != "func"
    }
    assert args.func.__qualname__ == full.func.__qualname__


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_the_same_help_alone(name):
    def helps(parser):
        sub = next(a for a in parser._actions if a.dest == "==SUPPRESS==" and a.choices)
        return sub.choices[name].format_help()

    assert helps(build_parser(name)) == helps(build_parser())
