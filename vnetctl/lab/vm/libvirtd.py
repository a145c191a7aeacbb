"""libvirtd on lab hosts (`lab up --libvirt`): each host runs its own, in its namespaces.

It is started in the namespaces of the host's sshd (network, mount, UTS), so `virsh`
in the host's SSH sessions reaches it, the taps of its guests are the host's links and
its hooks run in the host. What it keeps is the host's own:
- /run/libvirt and /var/lib/libvirt: a tmpfs each, mounted in the host's mount
  namespace (state that dies with it, as on a reboot);
- /var/log/libvirt and /var/cache/libvirt (not overlaid by the lab): bind mounts of
  the host's directory `libvirt/log` and `libvirt/cache`, so a guest's console log is
  readable from the machine at `HOST_DIR/libvirt/log/qemu/`;
- /etc (the host's overlay): /etc/libvirt/qemu.conf written here, domain and network
  definitions, hooks (/etc/libvirt/hooks/qemu), and the user libvirt-qemu: Debian's
  libvirtd looks it up before it reads qemu.conf, and the package that makes it
  (libvirt-daemon-system) would bring polkit, systemd units and a firewall for nothing.
qemu.conf runs guests as root with no security driver, no private /dev namespace and
no virtlogd (stdio_handler "file"): the lab has no systemd, SELinux or AppArmor to work
with. Guests are plain processes in the host's network namespace, so `lab down` ends
them with the rest (vnetctl.lab.proc.pids_in_namespaces).

libvirtd looks for hooks only when it starts: `restart` after installing one; guests
keep running across a restart (libvirtd reconnects to them).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence

from vnetctl.lab.proc import LabError, pid_cmdline, run, run_many, spawn_daemon, terminate
from vnetctl.lab.state import LabHost

InHost = Callable[[LabHost, list[str]], list[str]]
URI = "qemu:///system"
START_TIMEOUT = 30.0
TOOLS = ("libvirtd", "virsh", "qemu-system-x86_64")
# Debian's packages for the lab's libvirt and guests (scripts/setup.sh installs them);
# libvirt-daemon-system is not one: its service would start a libvirtd of the machine's.
PACKAGES = (
    "libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-clients",
    "libvirt-daemon-config-nwfilter", "iptables", "qemu-system-x86", "busybox-static", "kmod",
)  # fmt: skip

QEMU_CONF = """\
# Written by `vnetctl lab up --libvirt` (vnetctl/lab/vm/libvirtd.py).
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
stdio_handler = "file"
namespaces = []
"""

# $1: the host's log dir, $2: its cache dir (both on the machine's filesystem).
PREPARE_SCRIPT = f"""\
set -e
for dir in /run/libvirt /var/lib/libvirt; do
    mkdir -p "$dir"
    mountpoint -q "$dir" || mount -t tmpfs -o mode=0755 tmpfs "$dir"
done
mkdir -p /var/log/libvirt /var/cache/libvirt "$1/qemu" "$2"
mountpoint -q /var/log/libvirt || mount --bind "$1" /var/log/libvirt
mountpoint -q /var/cache/libvirt || mount --bind "$2" /var/cache/libvirt
getent passwd libvirt-qemu >/dev/null ||
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin libvirt-qemu
mkdir -p /etc/libvirt
cat >/etc/libvirt/qemu.conf <<'EOF'
{QEMU_CONF}EOF
"""

# Every guest and network of the host's libvirtd, gone (lab reset).
CLEAN_SCRIPT = f"""\
v() {{ virsh -q -c {URI} "$@"; }}
for d in $(v list --name); do v destroy "$d" >/dev/null; done
for d in $(v list --all --name); do v undefine "$d" >/dev/null; done
for n in $(v net-list --name); do v net-destroy "$n" >/dev/null; done
for n in $(v net-list --all --name); do v net-undefine "$n" >/dev/null; done
test -z "$(v list --all --name)$(v net-list --all --name)"
"""


def require_libvirt() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise LabError(
            f"{', '.join(missing)} missing: run ./scripts/setup.sh ({' '.join(PACKAGES)})"
        )


def config_path(host: LabHost):
    return host.dir / "libvirt" / "libvirtd.conf"


def console_log(host: LabHost, domain: str):
    """Where a guest's serial console is written, seen from the machine."""
    return host.dir / "libvirt" / "log" / "qemu" / f"{domain}.console.log"


def libvirtd_alive(host: LabHost) -> bool:
    """The recorded PID is alive and is this host's libvirtd (its cmdline names our config)."""
    if host.libvirtd_pid is None:
        return False
    cmdline = pid_cmdline(host.libvirtd_pid)
    return cmdline is not None and str(config_path(host)) in cmdline


def start_libvirt(hosts: Sequence[LabHost], in_host: InHost) -> None:
    """Start (or keep) libvirtd on every host and wait until `virsh` reaches each; the
    hosts' sshds must run (libvirtd joins their namespaces)."""
    require_libvirt()
    starting = [h for h in hosts if not libvirtd_alive(h)]
    for host in starting:
        base = host.dir / "libvirt"
        (base / "log").mkdir(parents=True, exist_ok=True)
        (base / "cache").mkdir(parents=True, exist_ok=True)
        config_path(host).write_text(
            "# Written by `vnetctl lab up --libvirt`.\n"
            'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
        )
    prepare = [
        (in_host(h, ["sh", "-c", PREPARE_SCRIPT, "prepare", *_dirs(h)]), None) for h in starting
    ]
    _check(starting, run_many(prepare, check=False), "could not prepare libvirt")
    for host in starting:
        argv = in_host(host, ["libvirtd", "--config", str(config_path(host))])
        host.libvirtd_pid = spawn_daemon(argv, host.dir / "libvirt" / "libvirtd.out")
    wait_for_libvirt(hosts, in_host)


def wait_for_libvirt(hosts: Sequence[LabHost], in_host: InHost) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    waiting = list(hosts)
    while waiting:
        waiting = [h for h, ok in zip(waiting, reachable(waiting, in_host), strict=True) if not ok]
        dead = [h for h in waiting if h.libvirtd_pid is None or pid_cmdline(h.libvirtd_pid) is None]
        if dead or (waiting and time.monotonic() > deadline):
            host = (dead or waiting)[0]
            tail = _tail(host.dir / "libvirt" / "libvirtd.out")
            raise LabError(f"libvirtd on {host.name} is not answering: {tail}")
        if waiting:
            time.sleep(0.1)


def reachable(hosts: Sequence[LabHost], in_host: InHost) -> list[bool]:
    """Whether `virsh` in each host reaches its libvirtd."""
    jobs = [(in_host(h, ["virsh", "-q", "-c", URI, "uri"]), None) for h in hosts]
    return [r.returncode == 0 for r in run_many(jobs, check=False)]


def stop_libvirt(hosts: Sequence[LabHost], in_host: InHost) -> None:
    """Destroy the hosts' guests and stop their libvirtd (`lab up --no-libvirt`)."""
    alive = [h for h in hosts if libvirtd_alive(h)]
    script = f"for d in $(virsh -q -c {URI} list --name); do virsh -q -c {URI} destroy $d; done"
    run_many([(in_host(h, ["sh", "-c", script]), None) for h in alive], check=False)
    terminate(h.libvirtd_pid for h in alive if h.libvirtd_pid is not None)
    for host in hosts:
        host.libvirtd_pid = None


def restart_libvirt(hosts: Sequence[LabHost], in_host: InHost) -> None:
    """Stop the hosts' libvirtd and start it again (hooks are found at start); running
    guests keep running."""
    terminate(h.libvirtd_pid for h in hosts if libvirtd_alive(h) and h.libvirtd_pid)
    for host in hosts:
        host.libvirtd_pid = None
    start_libvirt(hosts, in_host)


def remove_guests_and_networks(hosts: Sequence[LabHost], in_host: InHost) -> None:
    """`lab reset`: every guest destroyed and undefined, every network too."""
    results = run_many([(in_host(h, ["sh", "-c", CLEAN_SCRIPT]), None) for h in hosts], check=False)
    _check(hosts, results, "could not remove the libvirt guests and networks")


def install_hook(host: LabHost, in_host: InHost, script: str, driver: str = "qemu") -> None:
    """Write /etc/libvirt/hooks/DRIVER (executable) on the host; restart libvirt after."""
    if driver not in ("qemu", "network", "daemon"):
        raise LabError(f"no libvirt hook {driver!r}")
    path = f"/etc/libvirt/hooks/{driver}"
    write = f"mkdir -p /etc/libvirt/hooks && cat >{path}.new && chmod 755 {path}.new"
    write += f" && mv {path}.new {path}"
    run(in_host(host, ["sh", "-c", write]), input=script)


def remove_hooks(hosts: Sequence[LabHost], in_host: InHost) -> list[LabHost]:
    """Delete /etc/libvirt/hooks on the hosts; the hosts that had one (to restart)."""
    script = "test -e /etc/libvirt/hooks || exit 3; rm -rf /etc/libvirt/hooks"
    results = run_many([(in_host(h, ["sh", "-c", script]), None) for h in hosts], check=False)
    return [h for h, r in zip(hosts, results, strict=True) if r.returncode == 0]


def _dirs(host: LabHost) -> list[str]:
    base = host.dir / "libvirt"
    return [str(base / "log"), str(base / "cache")]


def _check(hosts, results, what: str) -> None:
    failed = [(h, r) for h, r in zip(hosts, results, strict=True) if r.returncode != 0]
    if failed:
        host, result = failed[0]
        raise LabError(f"{what} on {host.name}: {result.stderr.strip()[-400:]}")


def _tail(path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(no output)"
    except FileNotFoundError:
        return "(no output)"
