#!/usr/bin/env bash
# The demo: a 3-host lab of real hosts on this machine, playbooks/site.yml applied,
# applied again (0 changed), then changes made by hand on one host found by a
# check-mode run with diffs and by a drift report (text on the terminal, HTML and
# Prometheus files). The lab stays up to explore, on a subnet no other lab holds (the
# README's own `vnetctl lab up` works beside it); the last line says how to remove it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
LAB=demo
INV=inventory/$LAB.yml

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "a fresh 3-host lab: network namespaces, each with its own sshd"
vnetctl lab down --name "$LAB" >/dev/null
vnetctl lab up --hosts 3 --name "$LAB" --inventory "$INV" --subnet auto  # a free one

step "vnetctl run playbooks/site.yml (first apply)"
vnetctl run playbooks/site.yml -i "$INV"

step "vnetctl run playbooks/site.yml (again: nothing to change)"
vnetctl run playbooks/site.yml -i "$INV"

step "vnetctl drift: no drift yet (exit 0), recorded in the history"
HISTORY=$(mktemp -d)/drift.sqlite
vnetctl drift playbooks/site.yml -i "$INV" --history "$HISTORY"

step "someone lowers eth2's MTU on $LAB-h2 and adds a port to its br-vm, by hand"
ip netns exec "vnl-$LAB-h2" ip link set dev eth2 mtu 1500
ip netns exec "vnl-$LAB-h2" ip link add demo0 mtu 9000 type veth peer name demo0p
ip netns exec "vnl-$LAB-h2" ip link set dev demo0 master br-vm

step "vnetctl run playbooks/site.yml --check --diff"
set +e
vnetctl run playbooks/site.yml -i "$INV" --check --diff

step "vnetctl drift (exit 2: drift), with HTML and Prometheus reports"
vnetctl drift playbooks/site.yml -i "$INV" --history "$HISTORY" \
    --report "html=$PWD/drift-report.html" --report "prometheus=$PWD/drift-report.prom"
echo "exit code: $?   reports: $PWD/drift-report.html, $PWD/drift-report.prom"
set -e

step "done; the lab is still up: vnetctl lab status --name $LAB; remove it with: vnetctl lab down --name $LAB"
