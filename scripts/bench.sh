#!/usr/bin/env bash
# The benchmark: vnetctl beside ansible-playbook (pipelining; Mitogen where it works),
# pyinfra and the SSH floor, on one lab, in one session, at several round-trip times
# (`vnetctl lab up --rtt`). Prints figures and the targets; writes
# bench/results/results.{json,md} and wall-time.png. Arguments go to `python -m bench`
# (default: --rtt 0,5,25 with N = 10 and 50 for all tools, N = 100 at the largest RTT
# for vnetctl, pyinfra and the floor, 3 runs each; see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
quiet() { grep -v "WARNING: Location" || true; }
[[ -x .venv-pyinfra/bin/pyinfra ]] || {
    python3 -m venv .venv-pyinfra
    .venv-pyinfra/bin/pip install -q 'pyinfra>=3.10,<4' 2>&1 | quiet
}
exec .venv/bin/python -m bench "$@"
