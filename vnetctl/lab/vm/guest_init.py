"""The tiny guest's /init (busybox sh) and the kernel command line that steers it.

The guest reads its network from the command line (`vnet.*` words; /proc/cmdline):

  vnet.mac=MAC             eth0 takes this MAC before it comes up (a guest that changes
                           its address: vSphere's "MAC address changes")
  vnet.ip=ADDR/LEN         an address on eth0 (repeatable)
  vnet.vlan=ID[:ADDR/LEN]  a VLAN sub-interface eth0.ID, with an address (repeatable):
                           frames the guest tags itself
  vnet.send=KIND,DEV,SRC,DST,COUNT
                           frames sent once DEV is up, in order, before the guest says
                           it is ready: KIND `arp` (broadcast ARP requests for DST, one a
                           second) or `ping` (ICMP echo requests to DST, five a second);
                           SRC a source MAC that DEV takes while sending (forged
                           transmits), `-` for its own
No IPv6 (nothing sent that was not asked for). The console (ttyS0) gets one line per
step, `vnet-guest: ...`; `vnet-guest: ready` last, after the frames were sent.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from vnetctl.errors import InputError

READY = "vnet-guest: ready"
SENT = "vnet-guest: sent"
BASE_CMDLINE = "console=ttyS0 quiet panic=-1"
MAX_COUNT = 100
_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_DEV_RE = re.compile(r"eth0(\.\d{1,4})?")

INIT = """\
#!/bin/busybox sh
# /init of the lab's tiny guest: see vnetctl/lab/vm/guest_init.py for its options.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "vnet-guest: $*"; }
opt() { for w in $(cat /proc/cmdline); do case $w in "vnet.$1="*) echo "${w#*=}";; esac; done; }
for m in /lib/modules/*.ko; do insmod "$m" || say "insmod $m failed"; done
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -e /sys/class/net/eth0 ] || say "no eth0"
ip link set lo up
mac=$(opt mac)
[ -z "$mac" ] || ip link set eth0 address "$mac"
ip link set eth0 up
for a in $(opt ip); do ip addr add "$a" dev eth0; done
for v in $(opt vlan); do
    id=${v%%:*}
    ip link add link eth0 name "eth0.$id" type vlan id "$id"
    ip link set "eth0.$id" up
    [ "$v" = "$id" ] || ip addr add "${v#*:}" dev "eth0.$id"
done
for s in $(opt send); do
    old=$IFS; IFS=,; set -- $s; IFS=$old
    kind=$1 dev=$2 src=$3 dst=$4 count=$5
    own=$(cat "/sys/class/net/$dev/address")
    [ "$src" = - ] || ip link set "$dev" address "$src"
    case $kind in
        arp) arping -q -c "$count" -w "$count" -I "$dev" "$dst" ;;
        ping) ping -q -c "$count" -i 0.2 -W 1 -I "$dev" "$dst" >/dev/null ;;
    esac
    [ "$src" = - ] || ip link set "$dev" address "$own"
    say "sent $kind $dev $src $dst $count"
done
say "ready $(cat /sys/class/net/eth0/address) $(opt ip)"
while :; do sleep 3600; done
"""


@dataclass(frozen=True)
class Send:
    """Frames the guest sends at boot (see the module's docstring)."""

    kind: str
    dst: str
    dev: str = "eth0"
    src: str = "-"
    count: int = 1

    def word(self) -> str:
        if self.kind not in ("arp", "ping"):
            raise InputError(f"guest frames: unknown kind {self.kind!r} (arp or ping)")
        if not _DEV_RE.fullmatch(self.dev):
            raise InputError(f"guest frames: bad device {self.dev!r} (eth0 or eth0.ID)")
        if self.src != "-":
            mac(self.src)
        address(self.dst)
        if not 1 <= self.count <= MAX_COUNT:
            raise InputError(f"guest frames: count {self.count} not in 1..{MAX_COUNT}")
        return f"vnet.send={self.kind},{self.dev},{self.src},{self.dst},{self.count}"


def mac(text: str) -> str:
    if not _MAC_RE.fullmatch(text):
        raise InputError(f"bad MAC address {text!r} (six lower-case hex pairs)")
    return text


def address(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise InputError(f"bad guest frame destination {text!r}: {exc}") from None


def interface_address(text: str) -> str:
    try:
        return str(ipaddress.IPv4Interface(text))
    except ValueError as exc:
        raise InputError(f"bad guest address {text!r}: {exc}") from None


def cmdline(
    addresses: tuple[str, ...] = (),
    guest_mac: str | None = None,
    vlans: tuple[tuple[int, str | None], ...] = (),
    sends: tuple[Send, ...] = (),
) -> str:
    """The kernel command line for these options, every value checked: nothing reaches
    the guest's shell but addresses, MACs, numbers and the two kinds of frames."""
    words = [BASE_CMDLINE]
    if guest_mac:
        words.append(f"vnet.mac={mac(guest_mac)}")
    words += [f"vnet.ip={interface_address(a)}" for a in addresses]
    for vid, vlan_address in vlans:
        if not 1 <= int(vid) <= 4094:
            raise InputError(f"bad guest VLAN {vid!r} (1-4094)")
        suffix = f":{interface_address(vlan_address)}" if vlan_address else ""
        words.append(f"vnet.vlan={int(vid)}{suffix}")
    words += [send.word() for send in sends]
    return " ".join(words)
