"""The lab's tiny guest: Debian's kernel and an initramfs of busybox and a few modules.

The kernel is Debian's own (`linux-image-amd64`'s current package), fetched with
`apt-get download` into the cache and read with dpkg-deb: never installed, /boot is
not touched. The initramfs holds /init (vnetctl.lab.vm.guest_init), the static busybox
of Debian's busybox-static, and the kernel's modules for a virtio NIC and 802.1Q; the
package ships no modules.dep, so their load order comes from each module's own
`depends` (modinfo) and is written into their file names (01-virtio_ring.ko, ...).

Built once per input: the image lives in CACHE/guest/DIGEST/, DIGEST a hash of the
kernel package, the busybox binary, the module list and /init, and the same inputs
give the same bytes (vnetctl.lab.vm.cpio). A build goes to a temporary directory
renamed into place when complete, so a full disk or an interrupted build leaves no
half image behind.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vnetctl.lab.proc import LabError, run
from vnetctl.lab.vm import cpio
from vnetctl.lab.vm.guest_init import INIT

CACHE = Path(os.environ.get("VNETCTL_LAB_CACHE", "/var/cache/vnetctl-lab"))
KERNEL_PACKAGE = "linux-image-amd64"  # Debian's metapackage: its Depends names the kernel
BUSYBOX = Path("/bin/busybox")
# What the guest needs: virtio-net over PCI (q35), and 802.1Q for VLAN sub-interfaces.
# Every module these depend on must be listed too: the build says which one is missing.
MODULES = (
    "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
    "failover", "net_failover", "virtio_net", "llc", "stp", "garp", "mrp", "8021q",
)  # fmt: skip
FORMAT = "1"  # bump when the layout of the image changes without its inputs changing


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path
    kernel_package: str  # the .deb's file name: which kernel the guests run

    @property
    def digest(self) -> str:
        return self.kernel.parent.name


def guest_image(progress=None) -> GuestImage:
    """The cached image, built first when its inputs changed."""
    say = progress or (lambda _message: None)
    deb = kernel_deb(say)
    if not BUSYBOX.is_file() or _has_interpreter(BUSYBOX.read_bytes()):
        raise LabError(f"{BUSYBOX} is missing or not static: install busybox-static")
    digest = _digest(deb)
    target = CACHE / "guest" / digest
    image = GuestImage(target / "vmlinuz", target / "initrd.gz", deb.name)
    if image.kernel.is_file() and image.initrd.is_file():
        return image
    say(f"guest image {digest}: kernel {deb.name}, busybox, {len(MODULES)} modules")
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=target.parent))
    try:
        kernel, modules = _read_package(deb)
        ordered = load_order({name: _depends(data, building) for name, data in modules.items()})
        (building / "vmlinuz").write_bytes(kernel)
        (building / "initrd.gz").write_bytes(cpio.initramfs(_entries(modules, ordered)))
        building.chmod(0o755)
        _publish(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return image


def _publish(building: Path, target: Path) -> None:
    """Rename the finished build into place. Another process (a second test run) may
    have built the same inputs meanwhile: its image has the same bytes, so it stays."""
    try:
        os.replace(building, target)
    except OSError:  # ENOTEMPTY/EEXIST: the target directory is there already
        if not ((target / "vmlinuz").is_file() and (target / "initrd.gz").is_file()):
            raise


def kernel_deb(say) -> Path:
    """The kernel package in the cache: the one there, else the current one from apt."""
    debs = CACHE / "debs"
    cached = sorted(debs.glob("linux-image-*-amd64_*_amd64.deb"))
    if cached:
        return cached[-1]
    depends = run(["apt-cache", "depends", "--no-recommends", "--no-suggests", KERNEL_PACKAGE],
                  check=False).stdout  # fmt: skip
    names = [line.split(":", 1)[1].strip() for line in depends.splitlines()
             if line.strip().startswith("Depends: linux-image-")]  # fmt: skip
    if not names:
        raise LabError(f"apt knows no {KERNEL_PACKAGE}: run `apt-get update` first")
    say(f"fetching {names[0]} (apt-get download) into {debs}")
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=debs, prefix=".download.") as tmp:
        run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", names[0]], timeout=600,
            cwd=tmp)  # fmt: skip
        fetched = list(Path(tmp).glob("*.deb"))
        if len(fetched) != 1:
            raise LabError(f"apt-get download {names[0]} gave {len(fetched)} files")
        os.replace(fetched[0], debs / fetched[0].name)
    return debs / fetched[0].name


def load_order(depends: dict[str, list[str]]) -> list[str]:
    """Every module after those it depends on (ties by name, so the order is stable)."""
    missing = sorted({d for deps in depends.values() for d in deps} - depends.keys())
    if missing:
        raise LabError(f"guest modules need {', '.join(missing)}: add to MODULES in {__name__}")
    ordered: list[str] = []
    while len(ordered) < len(depends):
        ready = sorted(n for n, deps in depends.items()
                       if n not in ordered and all(d in ordered for d in deps))  # fmt: skip
        if not ready:
            raise LabError(f"guest modules depend on each other in a circle: {depends}")
        ordered.append(ready[0])
    return ordered


def _digest(deb: Path) -> str:
    h = hashlib.sha256()
    for part in (FORMAT, deb.name, _file_sha(deb), _file_sha(BUSYBOX), " ".join(MODULES), INIT):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_package(deb: Path) -> tuple[bytes, dict[str, bytes]]:
    """vmlinuz and the MODULES' files from the package, in one pass over its data."""
    kernel, modules = None, {}
    argv = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                path = member.name
                base = path.rsplit("/", 1)[-1]
                if path.startswith("./boot/vmlinuz-") and member.isfile():
                    kernel = tar.extractfile(member).read()
                elif "/kernel/" in path and member.isfile():
                    name, _, ext = base.partition(".")
                    name = name.replace("-", "_")
                    if name in MODULES and ext in ("ko", "ko.xz"):
                        data = tar.extractfile(member).read()
                        modules[name] = lzma.decompress(data) if ext == "ko.xz" else data
    if proc.returncode != 0 or kernel is None:
        raise LabError(f"{deb.name}: no kernel read from the package (dpkg-deb {proc.returncode})")
    absent = [m for m in MODULES if m not in modules]
    if absent:
        raise LabError(f"{deb.name} has no module {', '.join(absent)}")
    return kernel, modules


def _depends(module: bytes, scratch: Path) -> list[str]:
    path = scratch / "probe.ko"
    path.write_bytes(module)
    try:
        out = run(["modinfo", "-F", "depends", str(path)]).stdout.strip()
    finally:
        path.unlink()
    return [d for d in out.split(",") if d]


def _entries(modules: dict[str, bytes], ordered: list[str]) -> list[cpio.Entry]:
    folders = ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules")
    entries = [cpio.directory(d) for d in folders]
    entries += [
        cpio.char_device("dev/console", 5, 1),
        cpio.file("bin/busybox", BUSYBOX.read_bytes(), executable=True),
        cpio.symlink("bin/sh", "busybox"),
        cpio.file("init", INIT.encode(), executable=True),
    ]
    entries += [cpio.file(f"lib/modules/{i:02d}-{name}.ko", modules[name])
                for i, name in enumerate(ordered, start=1)]  # fmt: skip
    return entries


def _has_interpreter(elf: bytes) -> bool:
    """Whether an ELF64 executable names a dynamic loader (a PT_INTERP program header)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return True  # not what we can check: treat as not static
    phoff = int.from_bytes(elf[32:40], "little")
    size, count = int.from_bytes(elf[54:56], "little"), int.from_bytes(elf[56:58], "little")
    return any(int.from_bytes(elf[phoff + i * size : phoff + i * size + 4], "little") == 3
               for i in range(count))  # fmt: skip
