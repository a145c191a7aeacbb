#!/usr/bin/env bash
# How we learn early that a new release breaks us: installs vnetctl with the newest
# versions PyPI has of everything (no lock; pyproject.toml's ranges only) in .venv-newest,
# says which differ from requirements/dev.lock, and runs the unit tier there. pytest turns
# every warning into an error (pyproject.toml), so a new deprecation fails it too.
#
#   ./scripts/newest.sh           # exit 0: the newest versions pass; refresh the locks
#                                 # with ./scripts/lock.sh --upgrade, then ./scripts/test.sh
#
# Needs no root and no lab; arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .venv-newest
"${PYTHON:-python3}" -m venv .venv-newest
# the installs' own output (pip's and setuptools' notices) is shown only when one fails
log=$(mktemp)
trap 'rm -f "$log"' EXIT
install() {
    .venv-newest/bin/python -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1 \
        || { cat "$log" >&2; exit 1; }
}
install --upgrade pip setuptools
install --no-build-isolation -e '.[test,bench]'
echo "newest: versions that differ from requirements/dev.lock"
.venv-newest/bin/python - <<'PY'
import re
from importlib import metadata
locked = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", open("requirements/dev.lock").read(), re.M))
for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
    if name in locked and locked[name] != dist.version:
        print(f"  {name}: {locked[name]} -> {dist.version}")
PY
exec .venv-newest/bin/python -m pytest tests/unit -q -p no:cacheprovider "$@"
