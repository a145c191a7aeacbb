"""A boot of a lab host's network, as systemd-networkd makes it from the files vnetctl
wrote: this machine's own systemd-networkd, run in a network namespace of its own whose
NICs are fresh veths named like the host's (each with its peer in the same namespace,
so it has a carrier), and a private mount namespace in which /etc/systemd/network is
the host's files, /run a tmpfs (networkd's state, no D-Bus) and /sys read-only (as in a
container: networkd then does not wait for udev). No systemd as PID 1 is needed; what is
not tested so is the rest of a boot (udev renames, the oneshot unit's ordering)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.labhosts import wait_until

NETWORKD = Path("/lib/systemd/systemd-networkd")
BOOT_TIMEOUT_S = 30.0  # networkd configures two veths and a bridge in well under a second


def skip_reason() -> str | None:
    if not NETWORKD.is_file():
        return f"no {NETWORKD} here (apt-get install systemd)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"no {tool} here"
    if not Path("/etc/systemd/network").is_dir():
        return "no /etc/systemd/network to mount the host's files on"
    try:
        pwd.getpwnam("systemd-network")
    except KeyError:
        return "no systemd-network user (networkd runs as it)"
    return None


def ip_json(namespace: str, *argv: str) -> list:
    done = subprocess.run(["ip", "-n", namespace, "-j", *argv], capture_output=True,
                          text=True, check=True, timeout=30)  # fmt: skip
    return json.loads(done.stdout or "[]")


@contextmanager
def booted(namespace: str, network_dir: Path, nics: list[str], log: Path,
           ready: Callable[[str], bool]) -> Iterator[str]:  # fmt: skip
    """Yields `namespace` once networkd, started on `network_dir`'s files, has made it
    `ready` (bounded); networkd and the namespace go afterwards, by their own names."""
    subprocess.run(["ip", "netns", "add", namespace], check=True, timeout=30)
    try:
        for nic in nics:
            peer = f"{nic}p"
            subprocess.run(["ip", "-n", namespace, "link", "add", nic, "type", "veth", "peer",
                            "name", peer], check=True, timeout=30)  # fmt: skip
            subprocess.run(["ip", "-n", namespace, "link", "set", peer, "up"], check=True,
                           timeout=30)  # fmt: skip
        os.chmod(network_dir, 0o755)  # networkd reads it as systemd-network
        script = (
            "mount -o remount,bind,ro /sys && mount -t tmpfs tmpfs /run && "
            "mkdir -p /run/systemd/netif/links /run/systemd/netif/leases && "
            "chown -R systemd-network: /run/systemd/netif && "
            f"mount --bind {network_dir} /etc/systemd/network && exec {NETWORKD}"
        )
        argv = ["ip", "netns", "exec", namespace, "unshare", "-m", "--propagation", "private",
                "sh", "-c", script]  # fmt: skip
        with log.open("w") as out, subprocess.Popen(argv, stdout=out, stderr=out) as networkd:
            try:
                wait_until(lambda: networkd.poll() is not None or ready(namespace),
                           BOOT_TIMEOUT_S, f"networkd to configure {namespace}")  # fmt: skip
                assert networkd.poll() is None, log.read_text()
                yield namespace
            finally:
                networkd.terminate()
                networkd.wait(timeout=30)
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False, timeout=30)
