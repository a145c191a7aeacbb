#!/usr/bin/env bash
# The demo: a 3-host lab of real hosts on this machine, playbooks/site.yml applied,
# applied again (0 changed), then a change made by hand on one host found by
# a check-mode run with diffs. The lab stays up to explore; the last line says how
# to remove it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
LAB=demo
INV=inventory/$LAB.yml

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "a fresh 3-host lab: network namespaces, each with its own sshd"
vnetctl lab down --name "$LAB" >/dev/null
vnetctl lab up --hosts 3 --name "$LAB" --inventory "$INV"

step "vnetctl run playbooks/site.yml (first apply)"
vnetctl run playbooks/site.yml -i "$INV"

step "vnetctl run playbooks/site.yml (again: nothing to change)"
vnetctl run playbooks/site.yml -i "$INV"

step "someone lowers eth1's MTU on $LAB-h2 by hand"
ip netns exec "vnl-$LAB-h2" ip link set dev eth1 mtu 1500

step "drift: vnetctl run playbooks/site.yml --check --diff"
set +e
vnetctl run playbooks/site.yml -i "$INV" --check --diff
set -e

step "done; the lab is still up: vnetctl lab status --name $LAB; remove it with: vnetctl lab down --name $LAB"
