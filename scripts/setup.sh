#!/usr/bin/env bash
# Installs what vnetctl and its lab need on a Debian machine, idempotently, as root:
#
#   ./scripts/setup.sh           # system packages, and .venv: vnetctl and its runtime
#                                # dependencies only (what the demo runs)
#   ./scripts/setup.sh --test    # also .venv-dev (runtime + test + bench extras: what the
#                                # tests run in) and .venv-ansible (ansible-core + Mitogen)
#
# Python packages come from the committed locks in requirements/ (exact versions, with
# hashes): a virtualenv is made again from scratch when its lock changed, so it never holds
# what the lock does not say. scripts/lock.sh rewrites the locks.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
case "${1:-}" in
    "") ;;
    --test) with_test=1 ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
esac

if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: run as root (the lab creates network namespaces)" >&2
    exit 1
fi

PACKAGES=(openssh-server openssh-client iproute2 ethtool iperf3 openvswitch-switch
          python3 python3-venv python3-pip util-linux procps sudo iputils-ping
          systemd jq nftables nfdump pmacct prometheus prometheus-node-exporter chromium
          libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
          libvirt-daemon-config-nwfilter iptables qemu-system-x86 busybox-static kmod
          postgresql)
# systemd: `systemd-analyze verify` checks the drift timer units and boot persistence's
# oneshot unit in tests, and its networkd's parser tables check every unit key vnetctl
# writes; jq: the docs' examples pipe `vnetctl facts` into it; nftables: port_group's port security (nft,
# bridge family); nfdump (nfcapd) and pmacct (sfacctd): the flow collectors the OVS
# flow-export test runs inside a lab host; libvirt, qemu, busybox-static, kmod (modinfo):
# `lab up --libvirt`, each host's own libvirtd and its tiny guests (vnetctl/lab/vm/).
# libvirt-daemon is libvirtd without a service (libvirt-daemon-system has the units, and
# none of these depends on it; apt-install.sh installs no recommends): nothing starts a
# system libvirtd beside the lab's. iptables gives nwfilter its ebtables (nft backend).
# prometheus: promtool checks and unit-tests contrib/prometheus's alert rules, and with
# prometheus-node-exporter makes the lab's real scrape (their services are never
# started: tests/integration/test_prometheus_scrape_lab.py runs its own); chromium
# (headless; ~80 MB download, 290 MB installed): the drift HTML report's first-screen
# test lays the page out in it. postgresql: the shared drift history's tests start a
# server of their own (initdb into a temporary directory; the packaged one is never started).
scripts/apt-install.sh setup "${PACKAGES[@]}"

PY=${PYTHON:-python3}

# pip's notes about this machine's own index settings are noise here
quiet_pip() { "$@" 2> >(grep -v '^WARNING: Location' >&2); }

# locked_venv DIR LOCK [editable]: DIR holds exactly LOCK's packages (and vnetctl, editable).
locked_venv() {
    local dir=$1 lock=$2 editable=${3:-}
    local want
    want=$(sha256sum "$lock" | cut -c1-64)
    if [[ ! -x $dir/bin/python || "$(cat "$dir/.lock-sha256" 2>/dev/null)" != "$want" ]]; then
        echo "setup: $dir from $lock"
        rm -rf "$dir"
        "$PY" -m venv "$dir"
        quiet_pip "$dir/bin/python" -m pip install -q --disable-pip-version-check \
            --require-hashes --no-deps -r "$lock"
        echo "$want" >"$dir/.lock-sha256"
        rm -f "$dir/.project-sha256"
    fi
    [[ -n $editable ]] || return 0
    # the project's own metadata (entry points, packages): installed again when it changed
    local project
    project=$(cat pyproject.toml setup.py | sha256sum | cut -c1-64)
    if [[ "$(cat "$dir/.project-sha256" 2>/dev/null)" != "$project" ]]; then
        quiet_pip "$dir/bin/python" -m pip install -q --disable-pip-version-check \
            --no-deps --no-build-isolation -e .
        echo "$project" >"$dir/.project-sha256"
    fi
}

locked_venv .venv requirements/runtime.lock editable
if ((with_test)); then
    locked_venv .venv-dev requirements/dev.lock editable
    # ansible-core and Mitogen in their own virtualenv: the tests that run modules/ from
    # an Ansible library path, and the benchmarks; they must not share vnetctl's.
    locked_venv .venv-ansible requirements/ansible.lock
fi
