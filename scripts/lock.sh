#!/usr/bin/env bash
# Writes the locks in requirements/ (exact versions with hashes, for CPython 3.11 on any
# platform) that scripts/setup.sh installs from, with uv (pinned below, in .venv-lock):
#
#   ./scripts/lock.sh             # after a change to pyproject.toml or requirements/*.in:
#                                 # keeps every locked version that still fits
#   ./scripts/lock.sh --upgrade   # moves everything to the newest versions that fit;
#                                 # run ./scripts/test.sh before committing the result
#
# runtime.lock is what vnetctl needs (and what builds it); dev.lock adds the test and bench
# extras at the same versions; ansible.lock and pyinfra.lock are the tools the tests and
# the benchmark compare with, each in a virtualenv of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
upgrade=()
case "${1:-}" in
    "") ;;
    --upgrade) upgrade=(--upgrade) ;;
    *) echo "usage: scripts/lock.sh [--upgrade]" >&2; exit 2 ;;
esac

if [[ "$(.venv-lock/bin/uv --version 2>/dev/null)" != "uv $UV_VERSION "* ]]; then
    rm -rf .venv-lock
    "${PYTHON:-python3}" -m venv .venv-lock
    .venv-lock/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" \
        2> >(grep -v '^WARNING: Location' >&2)
fi
compile() {
    .venv-lock/bin/uv pip compile --quiet --python-version 3.11 --generate-hashes \
        --no-header "${upgrade[@]}" "$@"
}
compile pyproject.toml requirements/build.in -o requirements/runtime.lock
compile pyproject.toml requirements/build.in --extra test --extra bench \
    -c requirements/runtime.lock -o requirements/dev.lock
compile requirements/ansible.in -o requirements/ansible.lock
compile requirements/pyinfra.in -o requirements/pyinfra.lock
git --no-pager diff --stat -- requirements/ || true
