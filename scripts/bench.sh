#!/usr/bin/env bash
# The benchmark: vnetctl beside ansible-playbook (pipelining; Mitogen where it works),
# pyinfra and the SSH floor, on one lab, in one session, at several round-trip times
# (`vnetctl lab up --rtt`). Prints figures and the targets; writes
# bench/results/results.{json,md} and wall-time.png. Arguments go to `python -m bench`
# (default: --rtt 0,5,25 with N = 10 and 50 for all tools, N = 100 at the largest RTT
# for vnetctl, pyinfra and the floor, 3 runs each; see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test   # .venv-dev (matplotlib for the chart) and .venv-ansible
want=$(sha256sum requirements/pyinfra.lock | cut -c1-64)
if [[ "$(cat .venv-pyinfra/.lock-sha256 2>/dev/null)" != "$want" ]]; then
    rm -rf .venv-pyinfra
    python3 -m venv .venv-pyinfra
    .venv-pyinfra/bin/pip install -q --require-hashes --no-deps -r requirements/pyinfra.lock \
        2> >(grep -v "WARNING: Location" >&2)
    echo "$want" >.venv-pyinfra/.lock-sha256
fi
exec .venv-dev/bin/python -m bench "$@"
