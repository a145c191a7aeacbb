#!/usr/bin/env bash
# Brings up the Vagrant tier's guests and writes vagrant/inventory.yml:
#   box (built and cached by build-box.sh, unless VNETCTL_VAGRANT_BOX names your own)
#   -> libvirtd (started by hand if needed) and the tier's storage pool -> the domain type
#   (kvm_probe.py) -> one `vagrant up` per host, timed -> the inventory.
# Times go to $VNETCTL_VAGRANT_TIMES (lines of `name seconds`) when it is set.
#
#   scripts/vagrant/up.sh            # VNETCTL_VAGRANT_HOSTS=N for other than 3
#   scripts/vagrant/down.sh          # removes all of it again
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/vagrant/env.sh

record() { [[ -z ${VNETCTL_VAGRANT_TIMES:-} ]] || echo "$1 $2" >>"$VNETCTL_VAGRANT_TIMES"; }
# Vagrant's output, one timestamped line per line, without its upload progress bar.
stamp() {
    stdbuf -oL tr '\r' '\n' | { grep --line-buffered -v -e 'Progress:' -e '^[[:space:]]*$' || true; } |
        while IFS= read -r line; do printf '%(%T)T %s %s\n' -1 "$1" "$line"; done
}

scripts/vagrant/setup.sh

if [[ $VNETCTL_VAGRANT_BOX == vnetctl-debian12 ]]; then
    t=$SECONDS
    box_file=$(scripts/vagrant/build-box.sh)
    record box_build $((SECONDS - t))
    recipe=$(cat "$box_file.recipe")
    if [[ $(cat "$VAGRANT_HOME/vnetctl-debian12.recipe" 2>/dev/null) != "$recipe" ]]; then
        echo "up: adding the box to Vagrant ($VAGRANT_HOME)"
        vagrant box add --force --name vnetctl-debian12 "$box_file" >/dev/null
        echo "$recipe" >"$VAGRANT_HOME/vnetctl-debian12.recipe"
    fi
fi

scripts/vagrant/libvirtd.sh start

# vagrant-libvirt uploads the box into the pool through libvirt's stream API, which takes
# minutes for this box here; a local sparse copy under the name it looks for (its rule:
# box name, "_vagrant_box_image_0_" and the box file's mtime for an unversioned box) takes
# seconds. The pool is the tier's own, and down.sh empties it.
box_img=$VAGRANT_HOME/boxes/${VNETCTL_VAGRANT_BOX//\//-VAGRANTSLASH-}/0/libvirt/box.img
if [[ -f $box_img ]]; then
    volume="${VNETCTL_VAGRANT_BOX//\//-VAGRANTSLASH-}_vagrant_box_image_0_$(stat -c %Y "$box_img")_box.img"
    if ! virsh -q vol-info --pool "$VNETCTL_VAGRANT_POOL" "$volume" >/dev/null 2>&1; then
        t=$SECONDS
        cp --sparse=always "$box_img" "$VNETCTL_VAGRANT_CACHE/pool/$volume.tmp"
        mv "$VNETCTL_VAGRANT_CACHE/pool/$volume.tmp" "$VNETCTL_VAGRANT_CACHE/pool/$volume"
        virsh -q pool-refresh "$VNETCTL_VAGRANT_POOL" >/dev/null
        echo "up: box volume $volume copied into pool $VNETCTL_VAGRANT_POOL in $((SECONDS - t)) s"
    fi
fi

if [[ -z ${VNETCTL_VAGRANT_DOMAIN_TYPE:-} ]]; then
    VNETCTL_VAGRANT_DOMAIN_TYPE=$(timeout 60 python3 vagrant/kvm_probe.py -v)
    export VNETCTL_VAGRANT_DOMAIN_TYPE
fi
echo "up: $VNETCTL_VAGRANT_HOSTS hosts, libvirt domain type $VNETCTL_VAGRANT_DOMAIN_TYPE"

# Vagrant's own log per host (VAGRANT_LOG=info, with times) beside the consoles.
mkdir -p "$VNETCTL_VAGRANT_CACHE/console" "$VNETCTL_VAGRANT_CACHE/logs"
for ((i = 1; i <= VNETCTL_VAGRANT_HOSTS; i++)); do
    rm -f "$VNETCTL_VAGRANT_CACHE/console/h$i.log"
    t=$SECONDS
    log=$VNETCTL_VAGRANT_CACHE/logs/vagrant-up-h$i.log
    if ! (cd vagrant && VAGRANT_LOG=${VAGRANT_LOG:-info} vagrant up "h$i" --provider libvirt \
        2>"$log") | stamp "h$i:"; then
        echo "up: vagrant up h$i failed; the end of $log:" >&2
        tail -40 "$log" >&2
        exit 1
    fi
    record "boot_h$i" $((SECONDS - t))
done

.venv/bin/python vagrant/write_inventory.py
echo "up: ready; vnetctl run PLAYBOOK -i vagrant/inventory.yml"
