#!/usr/bin/env bash
# The Vagrant tier in one command (README, "The Vagrant tier"): installs what it needs,
# builds the box (or reuses the cached one), boots the guests, runs tests/vagrant/, tears
# everything down, checks that nothing is left, and prints how long each part took.
#
#   scripts/vagrant/tier.sh [PYTEST-ARGS...]     # e.g. -k bridge
#
# VNETCTL_VAGRANT_HOSTS=N (default 3); VNETCTL_VAGRANT_KEEP=1 leaves the guests up
# afterwards (scripts/vagrant/down.sh removes them); the others: vagrant/Vagrantfile.
# Exit code: pytest's for the tests, or 1 when bring-up or the teardown check failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ $(id -u) -eq 0 ]] || { echo "tier.sh: run as root (libvirt, debootstrap)" >&2; exit 1; }
source scripts/vagrant/env.sh

times=$(mktemp /tmp/vnetctl-vagrant-times.XXXXXX)
reports=$(mktemp -d /tmp/vnetctl-vagrant-reports.XXXXXX)
export VNETCTL_VAGRANT_TIMES=$times VNETCTL_VAGRANT_REPORTS=$reports
started=$SECONDS
status=0
record() { echo "$1 $2" >>"$times"; }

finish() {
    local code=$1 t
    trap - EXIT INT TERM
    if [[ ${VNETCTL_VAGRANT_KEEP:-0} == 1 ]]; then
        echo "tier: guests left up (VNETCTL_VAGRANT_KEEP=1); scripts/vagrant/down.sh removes them"
    else
        t=$SECONDS
        scripts/vagrant/down.sh --keep-libvirtd || code=1
        VNETCTL_VAGRANT_PHASE=teardown .venv-dev/bin/python -m pytest -q -p no:cacheprovider \
            tests/vagrant/test_teardown.py || code=1
        scripts/vagrant/libvirtd.sh stop || code=1
        record teardown $((SECONDS - t))
    fi
    record total $((SECONDS - started))
    echo
    for report in "$reports"/*; do
        [[ -f $report ]] && { echo "== $(basename "$report")"; cat "$report"; echo; }
    done
    echo "== Vagrant tier times (seconds; $VNETCTL_VAGRANT_HOSTS hosts, domain type" \
        "${VNETCTL_VAGRANT_DOMAIN_TYPE:-see above})"
    column -t "$times" | tee "$VNETCTL_VAGRANT_CACHE/last-tier-times.txt"
    rm -rf "$times" "$reports"
    exit "$code"
}
trap 'finish $((status ? status : 1))' EXIT
trap 'echo "tier: interrupted: tearing down" >&2; status=130; exit 130' INT TERM

if ! scripts/vagrant/up.sh; then
    echo "tier: bringing the guests up failed" >&2
    status=1
    exit 1
fi
# the probe ran inside up.sh: say here which domain type the guests got
VNETCTL_VAGRANT_DOMAIN_TYPE=$(virsh -q dumpxml vnetctl-vagrant-h1 2>/dev/null |
    sed -n "s/.*<domain type='\([a-z]*\)'.*/\1/p")

t=$SECONDS
VNETCTL_VAGRANT_REQUIRED=1 .venv-dev/bin/python -m pytest tests/vagrant -p no:cacheprovider \
    --ignore=tests/vagrant/test_teardown.py -m vagrant -v -rs --durations=0 "$@"
status=$?
record tests $((SECONDS - t))
if ((status == 5)); then
    echo "tier: pytest collected no tests: that is a failure" >&2
    status=1
fi
finish "$status"
