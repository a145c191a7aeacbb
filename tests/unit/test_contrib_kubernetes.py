"""contrib/kubernetes: the Indexed Job's pods each run one shard, 1..N, and drift found
(exit 2) is a successful check while an error stays one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

MANIFEST = Path(__file__).parents[2] / "contrib" / "kubernetes" / "vnetctl-drift-shards.yaml"


def job():
    cron = yaml.safe_load(MANIFEST.read_text())
    assert cron["kind"] == "CronJob"
    return cron["spec"]["jobTemplate"]["spec"]


def pod_run(index: int, exits: int) -> tuple[int, str]:
    """The container's script with `vnetctl` a function that prints its arguments."""
    container = job()["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    script = f'vnetctl() {{ echo "$@"; return {exits}; }}\n' + container["args"][0]
    env.update(JOB_COMPLETION_INDEX=str(index), PATH="/usr/bin:/bin")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env=env)  # fmt: skip
    return done.returncode, done.stdout


def test_each_index_checks_its_own_shard_and_all_shards_are_covered():
    spec = job()
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 4
    shards = []
    for index in range(spec["completions"]):
        code, out = pod_run(index, 0)
        assert code == 0 and "--history postgresql://vnetctl@" in out
        shards.append(out.split("--shard ")[1].split()[0])
    assert shards == ["1/4", "2/4", "3/4", "4/4"]


def test_drift_is_success_and_an_error_is_a_failure():
    assert pod_run(0, 2)[0] == 0
    assert pod_run(0, 1)[0] == 1
    assert pod_run(0, 3)[0] == 3
