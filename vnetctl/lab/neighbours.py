"""Room in the kernel's neighbour (ARP) table for every lab's hosts.

The IPv4 neighbour table is one for all network namespaces: its limits exist only in
the first namespace (net.ipv4.neigh.default.gc_thresh1/2/3, by default 128/512/1024)
and count the entries of every namespace together (/proc/net/stat/arp_cache). A lab of
N hosts holds about 2N entries (the management bridge's for each host, each host's for
the bridge), so above ~500 hosts (fewer beside other labs) the table overflows: new
entries are refused and hosts' sshds stop answering. The limits cannot be scoped to a
lab's namespaces; instead `lab up` and `lab down` set gc_thresh2 and gc_thresh3 to the
values found before any lab raised them plus 2 entries per host of every recorded lab,
keep the values found in FOUND (LAB_ROOT), and put them back when the last lab is down.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vnetctl.lab.state import LAB_ROOT

SYSCTL = Path("/proc/sys/net/ipv4/neigh/default")
RAISED = ("gc_thresh2", "gc_thresh3")
PER_HOST = 2  # entries: the bridge's for the host, the host's for the bridge
FOUND = LAB_ROOT / "neighbour-limits.json"  # the limits before a lab raised them


def read_limits(sysctl: Path = SYSCTL) -> dict[str, int]:
    return {name: int((sysctl / name).read_text()) for name in RAISED}


def fit(lab_hosts: int, sysctl: Path = SYSCTL, found_file: Path = FOUND) -> dict[str, int]:
    """Set the limits for `lab_hosts` hosts over all recorded labs (0: restore the
    values found); returns the limits now in force."""
    found = _found(sysctl, found_file)
    wanted = {name: found[name] + PER_HOST * lab_hosts for name in RAISED}
    raising = wanted["gc_thresh3"] >= read_limits(sysctl)["gc_thresh3"]
    for name in reversed(RAISED) if raising else RAISED:  # thresh2 <= thresh3 throughout
        (sysctl / name).write_text(f"{wanted[name]}\n")
    if lab_hosts == 0:
        found_file.unlink(missing_ok=True)
    return read_limits(sysctl)


def _found(sysctl: Path, found_file: Path) -> dict[str, int]:
    """The limits before any lab raised them: recorded at the first raise."""
    try:
        found = json.loads(found_file.read_text())
        return {name: int(found[name]) for name in RAISED}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = read_limits(sysctl)
    found_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = found_file.with_suffix(".tmp")  # written whole or not at all (a full disk)
    tmp.write_text(json.dumps(found) + "\n")
    os.replace(tmp, found_file)
    return found
