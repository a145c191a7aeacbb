# Sourced by scripts/vagrant/*.sh: the tier's settings and the names of what it creates.
# Every setting is an environment variable with a default (vagrant/Vagrantfile lists them).
# shellcheck shell=bash
export VNETCTL_VAGRANT_CACHE=${VNETCTL_VAGRANT_CACHE:-/var/cache/vnetctl-vagrant}
export VNETCTL_VAGRANT_HOSTS=${VNETCTL_VAGRANT_HOSTS:-3}
export VNETCTL_VAGRANT_BOX=${VNETCTL_VAGRANT_BOX:-vnetctl-debian12}
export VNETCTL_VAGRANT_POOL=${VNETCTL_VAGRANT_POOL:-vnetctl-vagrant}
# Vagrant's own state (boxes) stays in the cache, not in root's home, unless you say so.
export VAGRANT_HOME=${VAGRANT_HOME:-$VNETCTL_VAGRANT_CACHE/vagrant.d}
export VAGRANT_CHECKPOINT_DISABLE=1  # Vagrant must not call home
export LIBVIRT_DEFAULT_URI=qemu:///system
mkdir -p "$VNETCTL_VAGRANT_CACHE" "$VAGRANT_HOME"
