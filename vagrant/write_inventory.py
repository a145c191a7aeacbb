"""Writes vagrant/inventory.yml (and vagrant/known_hosts) from the running guests, so
`vnetctl run PLAYBOOK -i vagrant/inventory.yml` works without hand editing.

- Connection settings come from `vagrant ssh-config` (address, port, user, the key Vagrant
  made for each machine). vnetctl logs in as `vagrant` and becomes root with sudo.
- Host keys come from each guest's serial console (the box prints its ed25519 key there
  at boot: scripts/vagrant/build-box.sh), not from the network. For a box of your own that
  does not, VNETCTL_VAGRANT_KEYSCAN=1 takes them with ssh-keyscan instead: trust on first
  use, said so on stderr.
- Per host, for the tests: `underlay_address` (eth1), `vagrant_domain` (the libvirt
  domain) and `vagrant_nics`: per NIC in guest order, its MAC, its host-side device and
  the libvirt network (or `udp` wire) it is on, from `virsh domiflist`.

    .venv/bin/python vagrant/write_inventory.py     # scripts/vagrant/up.sh runs it
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("VNETCTL_VAGRANT_CACHE", "/var/cache/vnetctl-vagrant"))
NET = os.environ.get("VNETCTL_VAGRANT_NET", "10.241")
PREFIX = "vnetctl-vagrant-"
HOST_KEY = re.compile(r"vnetctl-host-key: (ssh-ed25519 [A-Za-z0-9+/=]+)")


def ssh_config() -> dict[str, dict[str, str]]:
    """{machine: {option: value}} from `vagrant ssh-config` (all running machines)."""
    env = dict(os.environ)
    env.setdefault("VAGRANT_HOME", str(CACHE / "vagrant.d"))  # as scripts/vagrant/env.sh
    out = subprocess.run(
        ["vagrant", "ssh-config"], cwd=HERE, env=env, capture_output=True, text=True, timeout=300
    )
    if out.returncode != 0 and not out.stdout.strip():
        sys.exit(f"write_inventory: vagrant ssh-config failed: {out.stderr.strip()}")
    hosts: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in out.stdout.splitlines():
        words = line.strip().split(None, 1)
        if len(words) != 2:
            continue
        key, value = words[0].lower(), words[1].strip().strip('"')
        if key == "host":
            current = hosts.setdefault(value, {})
        elif current is not None:
            current[key] = value
    return hosts


def console_host_key(machine: str) -> str | None:
    """The last host key the guest printed on its serial console, or None."""
    log = CACHE / "console" / f"{machine}.log"
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    keys = HOST_KEY.findall(text)
    return keys[-1] if keys else None


def keyscan(address: str, port: str) -> str:
    out = subprocess.run(
        ["ssh-keyscan", "-T", "10", "-t", "ed25519", "-p", port, address],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "ssh-ed25519":
            return f"{parts[1]} {parts[2]}"
    sys.exit(f"write_inventory: ssh-keyscan found no ed25519 key at {address}:{port}")


def domain_nics(domain: str) -> list[dict[str, str]]:
    """The domain's NICs in order: [{mac, target, source}] from `virsh domiflist`."""
    out = subprocess.run(
        ["virsh", "-q", "-c", "qemu:///system", "domiflist", domain],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"write_inventory: virsh domiflist {domain}: {out.stderr.strip()}")
    nics = []
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) == 5:  # Interface Type Source Model MAC
            target, kind, source, _model, mac = fields
            nics.append(
                {"mac": mac, "target": target, "source": source if kind != "udp" else "udp"}
            )
        elif len(fields) == 4:  # a udp wire has no source column in some versions
            target, kind, _model, mac = fields
            nics.append({"mac": mac, "target": target, "source": kind})
    return nics


def main() -> int:
    config = ssh_config()
    if not config:
        sys.exit("write_inventory: no running guest (vagrant ssh-config printed no host)")
    keyscan_ok = os.environ.get("VNETCTL_VAGRANT_KEYSCAN") == "1"
    hosts: dict[str, dict] = {}
    known_hosts: list[str] = []
    for machine in sorted(config, key=lambda m: int(m.lstrip("h") or 0)):
        opts = config[machine]
        address, port = opts["hostname"], opts.get("port", "22")
        key = console_host_key(machine)
        if key is None:
            if not keyscan_ok:
                sys.exit(
                    f"write_inventory: {machine} printed no host key on its console "
                    f"({CACHE / 'console' / (machine + '.log')}); a box of your own? "
                    "VNETCTL_VAGRANT_KEYSCAN=1 trusts what ssh-keyscan finds instead"
                )
            print(f"write_inventory: {machine}: host key from ssh-keyscan (trusted on first use)",
                  file=sys.stderr)  # fmt: skip
            key = keyscan(address, port)
        known_hosts.append(f"{address if port == '22' else f'[{address}]:{port}'} {key}")
        index = int(machine.lstrip("h"))
        hosts[machine] = {
            "ansible_host": address,
            "ansible_port": int(port),
            "ansible_user": opts.get("user", "vagrant"),
            "ansible_ssh_private_key_file": opts["identityfile"],
            "underlay_address": f"{NET}.1.{10 + index}",
            "vagrant_domain": PREFIX + machine,
            "vagrant_nics": {f"eth{n}": nic for n, nic in enumerate(domain_nics(PREFIX + machine))},
        }
    (HERE / "known_hosts").write_text("\n".join(known_hosts) + "\n")
    inventory = {
        "all": {
            "vars": {
                # software-emulated guests on a busy machine can take longer than vnetctl's
                # default 10 s to answer an SSH handshake
                "ansible_timeout": 60,
                "ansible_become": True,
                "ansible_python_interpreter": "/usr/bin/python3",
                "vnetctl_known_hosts": str(HERE / "known_hosts"),
            },
            "hosts": hosts,
        }
    }
    header = (
        "# Written by vagrant/write_inventory.py from `vagrant ssh-config`, the guests'\n"
        "# consoles and `virsh domiflist`; rewritten by every scripts/vagrant/up.sh.\n"
    )
    tmp = HERE / "inventory.yml.tmp"
    tmp.write_text(header + yaml.safe_dump(inventory, sort_keys=False))
    tmp.replace(HERE / "inventory.yml")
    print(f"write_inventory: {HERE / 'inventory.yml'}: {', '.join(hosts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
