#!/usr/bin/env bash
# Every test: unit (no root), integration on the lab (real sshd, real kernel), CLI e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
.venv-dev/bin/ruff check vnetctl modules tests bench setup.py
set +e
.venv-dev/bin/python -m pytest tests -q -p no:cacheprovider "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
    echo "test.sh: pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit $status
