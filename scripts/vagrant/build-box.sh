#!/usr/bin/env bash
# Builds the Debian 12 vagrant-libvirt box the Vagrant tier boots, from Debian's packages
# alone (no box registry): debootstrap -> an ext4 root made with `mkfs.ext4 -d` (no loop
# device, no mount of the image) -> a partitioned disk with GRUB written by hand -> qcow2
# -> box. The box and every downloaded package are cached in $VNETCTL_VAGRANT_CACHE
# (default /var/cache/vnetctl-vagrant), outside the checkout, and reused: a rebuild happens
# only when this script (the recipe) or the mirror changed, or with --force.
#
#   scripts/vagrant/build-box.sh [--force]      progress on stderr, the box path on stdout
#
# A user with a box of their own skips this: VNETCTL_VAGRANT_BOX=name (README, "The
# Vagrant tier"). Runs as root (debootstrap, chroot).
set -euo pipefail

CACHE=${VNETCTL_VAGRANT_CACHE:-/var/cache/vnetctl-vagrant}
MIRROR=${VNETCTL_VAGRANT_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
DISK_GIB=${VNETCTL_VAGRANT_DISK_GIB:-4}
BOX=$CACHE/vnetctl-debian12.box
# What the guests carry (issue 16), and what makes them bootable and reachable.
PACKAGES=(
    linux-image-amd64 systemd systemd-sysv udev dbus kmod
    openssh-server sudo python3 iproute2 openvswitch-switch nftables iperf3
    ethtool iputils-ping procps netbase
)

exec 3>&1 1>&2  # progress to stderr; the box path alone to stdout (fd 3)
force=0
[[ ${1:-} == --force ]] && force=1
if [[ $(id -u) -ne 0 ]]; then
    echo "build-box.sh: run as root (debootstrap and chroot need it)" >&2
    exit 1
fi
mkdir -p "$CACHE/debs/debootstrap" "$CACHE/debs/apt/partial"
recipe=$( (sha256sum <"$0"; echo "$MIRROR $SUITE $DISK_GIB") | sha256sum | cut -c1-16)
if ((force == 0)) && [[ -f $BOX && $(cat "$BOX.recipe" 2>/dev/null) == "$recipe" ]]; then
    echo "build-box: reusing $BOX (recipe $recipe)"
    echo "$BOX" >&3
    exit 0
fi

started=$(date +%s)
work=$(mktemp -d "$CACHE/build.XXXXXX")
root=$work/root
cleanup() {
    # Unmount what this script mounted, innermost first, before anything is deleted;
    # rm never crosses into another filesystem even if an unmount failed.
    for m in "$root/var/cache/apt/archives" "$root/dev/pts" "$root/proc"; do
        if mountpoint -q "$m" 2>/dev/null; then umount "$m" || umount -l "$m"; fi
    done
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

echo "build-box: debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --cache-dir="$CACHE/debs/debootstrap" \
    "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    exit 1
}

# Daemons must not start inside the chroot (openvswitch-switch's init script would start
# ovsdb-server on the build machine): policy-rc.d refuses every start while installing.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666
mount --bind "$CACHE/debs/apt" "$root/var/cache/apt/archives"
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$root/etc/apt/sources.list"
# A small initramfs: GRUB reads it through the BIOS, which under software emulation takes
# about a second per MB; Debian's default (every storage driver) is over 30 MB. The
# guests boot from virtio, nothing else.
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
echo MODULES=list >"$root/etc/initramfs-tools/conf.d/vnetctl-box.conf"
printf '%s\n' virtio_pci virtio_blk virtio_net ext4 crc32c_generic \
    >"$root/usr/share/initramfs-tools/modules.d/vnetctl-box"
echo "build-box: installing ${PACKAGES[*]}"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]}" \
    >"$work/apt.log" 2>&1 || {
    tail -30 "$work/apt.log" >&2
    exit 1
}
chroot "$root" apt-get clean
umount "$root/var/cache/apt/archives" "$root/dev/pts" "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"

echo "build-box: configuring the guest"
uuid=$(uuidgen)
kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -1)
initrd=initrd.img-${kernel#vmlinuz-}
[[ -f $root/boot/$initrd ]] || { echo "build-box: no $initrd in the image" >&2; exit 1; }

echo vnetctl-box >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 vnetctl-box\n' >"$root/etc/hosts"
printf 'UUID=%s / ext4 defaults,errors=remount-ro 0 1\n' "$uuid" >"$root/etc/fstab"
# Each guest gets its own machine-id at first boot (networkd's DHCP client id derives
# from it: a shared one would give every guest the same address).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# Management NIC by DHCP with systemd-networkd; Vagrant writes the underlay's static
# address (50-vagrant-eth1.network) itself. The other NICs are left to vnetctl.
cat >"$root/etc/systemd/network/05-box-mgmt.network" <<'EOF'
# the Vagrant tier's box: the management NIC (libvirt network vnetctl-mgmt), by DHCP
[Match]
Name=eth0

[Network]
DHCP=ipv4
IPv6AcceptRA=no
LinkLocalAddressing=no

[DHCPv4]
ClientIdentifier=mac
EOF
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
# nothing waits for "network online": a NIC left to vnetctl must not hold the boot
chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1

# SSH host keys are made per guest at its first boot, and printed on the serial console,
# which the host reads to write known_hosts (vagrant/write_inventory.py): the keys reach
# the controller over a channel an attacker on the network does not control.
rm -f "$root"/etc/ssh/ssh_host_*
cat >"$root/etc/systemd/system/box-ssh-host-keys.service" <<'EOF'
[Unit]
Description=Make the SSH host key if missing and print it on the serial console
Before=ssh.service
After=systemd-remount-fs.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/box-ssh-host-key

[Install]
WantedBy=ssh.service
EOF
cat >"$root/usr/local/sbin/box-ssh-host-key" <<'EOF'
#!/bin/sh
set -e
key=/etc/ssh/ssh_host_ed25519_key
[ -f "$key" ] || ssh-keygen -q -t ed25519 -N "" -f "$key"
echo "vnetctl-host-key: $(cat "$key.pub")" >/dev/ttyS0
EOF
chmod 755 "$root/usr/local/sbin/box-ssh-host-key"
chroot "$root" systemctl enable box-ssh-host-keys.service ssh.service >/dev/null 2>&1
# ed25519 only: an RSA host key takes a minute to make under software emulation
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\nPasswordAuthentication no\n' \
    >"$root/etc/ssh/sshd_config.d/box.conf"

# Vagrant's conventional user: its well-known public key (from the installed vagrant
# package), replaced by a key of its own per machine at the first `vagrant up`.
vagrant_pub=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub | tail -1)
chroot "$root" useradd --create-home --shell /bin/bash vagrant
install -d -m 700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 600 -o 1000 -g 1000 "$vagrant_pub" "$root/home/vagrant/.ssh/authorized_keys"
[[ $(chroot "$root" id -u vagrant) == 1000 ]] || { echo "build-box: vagrant is not uid 1000" >&2; exit 1; }
printf 'vagrant ALL=(ALL) NOPASSWD:ALL\nDefaults:vagrant !requiretty\n' >"$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"

# GRUB for BIOS, set up by hand: boot.img's code in the MBR, core.img (GRUB with the disk,
# partition and ext4 drivers built in) right after it; both images' default block
# addresses (core at sector 1, the rest of it from sector 2) are where it is written.
mkdir -p "$root/boot/grub"
cp -r /usr/lib/grub/i386-pc "$root/boot/grub/"
# init_on_alloc=0: Debian's kernel zeroes every page it allocates, which software
# emulation makes the slowest part of a boot (unpacking the initramfs: minutes under load).
cat >"$root/boot/grub/grub.cfg" <<EOF
set timeout=0
set default=0
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
menuentry "Debian 12 (vnetctl Vagrant box)" {
    search --no-floppy --fs-uuid --set=root $uuid
    linux /boot/$kernel root=UUID=$uuid ro net.ifnames=0 biosdevname=0 console=tty0 console=ttyS0,115200n8 init_on_alloc=0
    initrd /boot/$initrd
}
EOF

echo "build-box: making the disk image"
disk_mib=$((DISK_GIB * 1024))
mkfs.ext4 -q -F -L vnetctl-root -U "$uuid" -d "$root" "$work/root.ext4" "$((disk_mib - 1))M" \
    >/dev/null
truncate -s "${disk_mib}M" "$work/disk.raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$work/disk.raw"
dd if="$work/root.ext4" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
grub-mkimage -O i386-pc -o "$work/core.img" -p "(hd0,msdos1)/boot/grub" \
    biosdisk part_msdos ext2 search search_fs_uuid normal linux configfile serial terminal
core_sectors=$(( ($(stat -c %s "$work/core.img") + 511) / 512 ))
((core_sectors < 2047)) || { echo "build-box: core.img does not fit before sector 2048" >&2; exit 1; }
dd if=/usr/lib/grub/i386-pc/boot.img of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$work/disk.raw" bs=512 seek=1 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/box.img"

cat >"$work/metadata.json" <<EOF
{"provider": "libvirt", "format": "qcow2", "virtual_size": $DISK_GIB}
EOF
cat >"$work/Vagrantfile" <<'EOF'
# vnetctl's Debian 12 box (scripts/vagrant/build-box.sh): the project's vagrant/Vagrantfile
# sets the provider; nothing here.
Vagrant.configure("2") do |config|
end
EOF
tar -C "$work" -cf "$work/box.tmp" metadata.json Vagrantfile box.img
# the box's kernel, for vagrant/kvm_probe.py: whether KVM boots it decides the domain type
cp "$root/boot/$kernel" "$CACHE/probe-vmlinuz"
mv "$work/box.tmp" "$BOX"
echo "$recipe" >"$BOX.recipe"
echo "build-box: built $BOX in $(($(date +%s) - started)) s ($(du -h "$BOX" | cut -f1))"
echo "$BOX" >&3
