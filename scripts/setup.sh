#!/usr/bin/env bash
# Installs what vnetctl, its lab and its tests need on a Debian machine, idempotently:
# system packages (as root), the project in .venv, ansible-core in .venv-ansible.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: run as root (the lab creates network namespaces)" >&2
    exit 1
fi

PACKAGES=(openssh-server openssh-client iproute2 ethtool iperf3 openvswitch-switch
          python3 python3-venv python3-pip util-linux procps sudo iputils-ping
          systemd jq nftables nfdump pmacct)
# systemd: `systemd-analyze verify` checks the drift timer units and boot persistence's
# oneshot unit in tests, and its networkd's parser tables check every unit key vnetctl
# writes; jq: the docs' examples pipe `vnetctl facts` into it; nftables: port_group's port security (nft,
# bridge family); nfdump (nfcapd) and pmacct (sfacctd): the flow collectors the OVS
# flow-export test runs inside a lab host
scripts/apt-install.sh setup "${PACKAGES[@]}"

# pip's notes about this machine's own index settings are noise here
quiet_pip() { "$@" 2> >(grep -v '^WARNING: Location' >&2); }

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
fi
# the bench extra (matplotlib) too: the harness test draws the benchmark's chart
quiet_pip .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'

# ansible-core and Mitogen in their own virtualenv: the tests that run modules/ from an
# Ansible library path, and the benchmarks, use them; they must not share vnetctl's
# environment. Mitogen supports only some ansible-core releases: both are bounded.
if ! .venv-ansible/bin/python -c "import ansible, ansible_mitogen" 2>/dev/null; then
    [[ -x .venv-ansible/bin/python ]] || "$PY" -m venv .venv-ansible
    quiet_pip .venv-ansible/bin/python -m pip install -q --disable-pip-version-check \
        'ansible-core>=2.15,<2.20' 'mitogen>=0.3.54,<0.4'
fi
