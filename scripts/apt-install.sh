#!/usr/bin/env bash
# Installs the Debian packages named on the command line that are not installed yet, and
# nothing else: one `apt-get update` and one install, only when something is missing.
#
#   scripts/apt-install.sh LABEL PACKAGE...     # LABEL prefixes the "installing" line
set -euo pipefail
label=$1
shift
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "$label: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
