#!/usr/bin/env bash
# The benchmark: vnetctl beside ansible-playbook (pipelining; Mitogen where it works),
# pyinfra and the SSH floor, on one lab, in one session. Prints figures; writes
# bench/results/results.{json,md} and wall-time.png. Arguments go to `python -m bench`
# (default: N = 10, 50, 100 for all tools, 10..200 for vnetctl, 3 runs each).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
quiet() { grep -v "WARNING: Location" || true; }
[[ -x .venv-pyinfra/bin/pyinfra ]] || {
    python3 -m venv .venv-pyinfra
    .venv-pyinfra/bin/pip install -q 'pyinfra>=3.10,<4' 2>&1 | quiet
}
exec .venv/bin/python -m bench "$@"
