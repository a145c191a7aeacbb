"""`vnetctl facts` prints what its --help and its JSON Schema say, and the help's jq
example works on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from vnetctl.cli.facts_cmd import schema
from vnetctl.cli.main import main
from vnetctl.lab import start_sshd, stop_sshd

pytestmark = pytest.mark.lab


def test_the_output_fits_the_schema_with_an_unreachable_host(lab3, fresh_hosts, capsys):
    down = lab3.host_names[2]
    stop_sshd(lab3.name, down)
    try:
        code = main(["facts", "-i", str(lab3.inventory_path), "--retries", "0"])
    finally:
        start_sshd(lab3.name, down)
    doc = json.loads(capsys.readouterr().out)
    assert code == 3
    jsonschema.validate(doc, schema())
    assert sorted(doc["hosts"]) == lab3.host_names[:2] and list(doc["errors"]) == [down]
    assert {"eth0", "eth1", "eth2"} <= {
        link["ifname"] for link in doc["hosts"][lab3.host_names[0]]["links"]
    }


def test_the_jq_example_of_the_help_works(lab3, fresh_hosts):
    assert shutil.which("jq"), "jq is needed (scripts/setup.sh installs it)"
    help_text = subprocess.run(
        [sys.executable, "-m", "vnetctl", "facts", "--help"], capture_output=True, text=True
    ).stdout
    (example,) = [line.strip() for line in help_text.splitlines() if "| jq" in line]
    command = example.replace("inventory/lab.yml", str(lab3.inventory_path)).replace(
        "lab-h", f"{lab3.name}-h"
    )
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {"lo", "eth0", "eth1", "eth2"} <= set(done.stdout.split())
