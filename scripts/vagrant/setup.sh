#!/usr/bin/env bash
# Installs what the Vagrant tier needs on a Debian 12 machine, idempotently, as root:
# Vagrant with its libvirt provider, libvirt and qemu, and the tools that build the box.
# The project's own environments (.venv-dev runs the tier's tests) come from
# scripts/setup.sh, which this runs first. Nothing here is needed by the default test run
# (./scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ $(id -u) -ne 0 ]]; then
    echo "vagrant/setup.sh: run as root (packages, libvirt, debootstrap)" >&2
    exit 1
fi
./scripts/setup.sh --test

PACKAGES=(vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86
          qemu-utils dnsmasq-base debootstrap fdisk e2fsprogs grub-pc-bin uuid-runtime
          openssh-client)
scripts/apt-install.sh vagrant/setup "${PACKAGES[@]}"
