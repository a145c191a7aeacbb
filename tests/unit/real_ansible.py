"""The real ansible-core 2.19 (.venv-ansible, from the lock) run on the same files as
vnetctl, for tests that compare: its environment holds no configuration of this machine
(no ansible.cfg, HOME a fresh directory) unless a test gives one."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BIN = ROOT / ".venv-ansible" / "bin"
needs_ansible = pytest.mark.skipif(
    not (BIN / "ansible-inventory").exists(), reason="needs .venv-ansible (setup.sh)"
)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(HOME=str(home), ANSIBLE_LOCAL_TEMP=str(home / "tmp"), ANSIBLE_NOCOLOR="1")
    env.update(extra)
    return env


def ansible(tool: str, *argv: str, cwd: Path, env: dict[str, str] | None = None, check=True):
    """Run an ansible tool; its CompletedProcess."""
    env = env if env is not None else clean_env(cwd)
    return subprocess.run(
        [str(BIN / tool), *argv], capture_output=True, text=True, timeout=180, cwd=cwd,
        env=env, check=check,
    )  # fmt: skip


def inventory_list(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> dict:
    return json.loads(ansible("ansible-inventory", "--list", *argv, cwd=cwd, env=env).stdout)


def listed_hosts(text: str) -> list[list[str]]:
    """Per play, the hosts a `--list-hosts` output names (ansible-playbook's format)."""
    plays, current = [], None
    for line in text.splitlines():
        if re.match(r"\s+hosts \(\d+\):", line):
            current = []
            plays.append(current)
        elif current is not None and line.startswith("      ") and line.strip():
            current.append(line.strip())
        else:
            current = None
    return plays


def list_hosts(playbook: Path, *argv: str, cwd: Path, env: dict[str, str] | None = None):
    out = ansible("ansible-playbook", str(playbook), "--list-hosts", *argv, cwd=cwd, env=env)
    return listed_hosts(out.stdout)
