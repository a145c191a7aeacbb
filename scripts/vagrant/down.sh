#!/usr/bin/env bash
# Tears the Vagrant tier down, each thing by its own name: the guests (`vagrant destroy`,
# then any vnetctl-vagrant-hN domain an interrupted run left), the libvirt networks
# vnetctl-mgmt, vnetctl-underlay and vnetctl-team, every volume of the tier's own pool and
# the pool, then the libvirtd and virtlogd that libvirtd.sh started. What stays is the
# cache (the box, the downloaded packages), which the next run reuses.
#
#   scripts/vagrant/down.sh [--keep-libvirtd]   # the tier keeps libvirtd for its check
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/vagrant/env.sh

NETWORKS=(vnetctl-mgmt vnetctl-underlay vnetctl-team)
MAX_HOSTS=50  # vagrant/Vagrantfile's limit
keep_libvirtd=0
[[ ${1:-} == --keep-libvirtd ]] && keep_libvirtd=1

virsh_() { timeout 120 virsh -q "$@"; }

# libvirt keeps the definitions of an interrupted run across restarts: start it (by hand,
# recorded, stopped again below) so that they can be removed by name.
if scripts/vagrant/libvirtd.sh start; then
    if [[ -d vagrant/.vagrant/machines ]]; then
        (cd vagrant && timeout 900 vagrant destroy -f) 2>&1 | sed 's/^/down: /' || true
    fi
    for ((i = 1; i <= MAX_HOSTS; i++)); do
        domain=vnetctl-vagrant-h$i
        virsh_ dominfo "$domain" >/dev/null 2>&1 || continue
        echo "down: removing domain $domain left by an earlier run"
        virsh_ destroy "$domain" >/dev/null 2>&1 || true
        virsh_ undefine "$domain" >/dev/null
    done
    for net in "${NETWORKS[@]}"; do
        virsh_ net-info "$net" >/dev/null 2>&1 || continue
        echo "down: removing network $net"
        virsh_ net-destroy "$net" >/dev/null 2>&1 || true
        virsh_ net-undefine "$net" >/dev/null
    done
    if virsh_ pool-info "$VNETCTL_VAGRANT_POOL" >/dev/null 2>&1; then
        virsh_ pool-refresh "$VNETCTL_VAGRANT_POOL" >/dev/null 2>&1 || true
        while read -r volume; do
            [[ -n $volume ]] || continue
            virsh_ vol-delete --pool "$VNETCTL_VAGRANT_POOL" "$volume" >/dev/null
            echo "down: deleted volume $volume"
        done < <(virsh_ vol-list "$VNETCTL_VAGRANT_POOL" | awk "{print \$1}")
        virsh_ pool-destroy "$VNETCTL_VAGRANT_POOL" >/dev/null 2>&1 || true
        virsh_ pool-undefine "$VNETCTL_VAGRANT_POOL" >/dev/null
        echo "down: removed pool $VNETCTL_VAGRANT_POOL"
    fi
fi
rm -rf vagrant/.vagrant
rm -f vagrant/inventory.yml vagrant/known_hosts
((keep_libvirtd)) || scripts/vagrant/libvirtd.sh stop
