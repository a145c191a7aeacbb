"""Does hardware virtualisation (KVM) boot a guest here? Prints `kvm` or `qemu`, the
libvirt domain type the Vagrant tier uses (vagrant/Vagrantfile).

`/dev/kvm` existing is not enough: on a machine nested without VMX/SVM the device can be
there (another hypervisor's KVM flavour) and even run a few real-mode instructions, while
an ordinary guest never boots (measured here: SeaBIOS runs, GRUB and Linux hang). So two
stages, the second decisive:

1. a VM with one page of memory holding `hlt`, one vCPU, one KVM_RUN: without KVM_EXIT_HLT
   there is no KVM at all;
2. the box's own kernel (`probe-vmlinuz` in the tier's cache, written by
   scripts/vagrant/build-box.sh, or --kernel PATH) booted by qemu with `-accel kvm` and no
   disk: KVM boots guests when the kernel gets as far as its "cannot mount root" panic
   within 30 s (about a second under working KVM; it never prints a line here).

Without a kernel to try, stage 1 decides and -v says so. Anything failing means qemu's
software emulation (TCG), which the guests then run under.

    python3 vagrant/kvm_probe.py [-v] [--kernel PATH]      # -v: why, on stderr
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

KVMIO = 0xAE
KVM_GET_API_VERSION = KVMIO << 8 | 0x00
KVM_CREATE_VM = KVMIO << 8 | 0x01
KVM_GET_VCPU_MMAP_SIZE = KVMIO << 8 | 0x04
KVM_CREATE_VCPU = KVMIO << 8 | 0x41
KVM_RUN = KVMIO << 8 | 0x80
_IOC_WRITE, _IOC_READ = 1, 2
USER_MEMORY_REGION_SIZE = 32  # struct kvm_userspace_memory_region
REGS_SIZE = 18 * 8  # struct kvm_regs: 16 general registers, rip, rflags
SREGS_SIZE = 312  # struct kvm_sregs: 8 segments, 2 tables, 7 control regs, bitmap


def _ioc(direction: int, nr: int, size: int) -> int:
    return direction << 30 | size << 16 | KVMIO << 8 | nr


KVM_SET_USER_MEMORY_REGION = _ioc(_IOC_WRITE, 0x46, USER_MEMORY_REGION_SIZE)
KVM_SET_REGS = _ioc(_IOC_WRITE, 0x82, REGS_SIZE)
KVM_GET_SREGS = _ioc(_IOC_READ, 0x83, SREGS_SIZE)
KVM_SET_SREGS = _ioc(_IOC_WRITE, 0x84, SREGS_SIZE)
KVM_EXIT_HLT = 5
GUEST_CODE_ADDRESS = 0x1000
HLT = b"\xf4"


def probe_ioctl() -> tuple[bool, str]:
    """Stage 1: (works, why)."""
    try:
        kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return False, f"/dev/kvm: {exc.strerror}"
    try:
        version = fcntl.ioctl(kvm, KVM_GET_API_VERSION)
        if version != 12:
            return False, f"KVM API version {version}, expected 12"
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        memory = mmap.mmap(-1, 0x2000)
        memory[GUEST_CODE_ADDRESS : GUEST_CODE_ADDRESS + 1] = HLT
        address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        region = struct.pack("=IIQQQ", 0, 0, 0, len(memory), address)
        fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, region)
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
        run_size = fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE)
        run = mmap.mmap(vcpu, run_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

        sregs = bytearray(fcntl.ioctl(vcpu, KVM_GET_SREGS, bytes(SREGS_SIZE)))
        struct.pack_into("=Q", sregs, 0, 0)  # cs.base
        struct.pack_into("=H", sregs, 12, 0)  # cs.selector
        fcntl.ioctl(vcpu, KVM_SET_SREGS, bytes(sregs))
        regs = bytearray(REGS_SIZE)
        struct.pack_into("=QQ", regs, 16 * 8, GUEST_CODE_ADDRESS, 0x2)  # rip, rflags
        fcntl.ioctl(vcpu, KVM_SET_REGS, bytes(regs))

        fcntl.ioctl(vcpu, KVM_RUN, 0)
        exit_reason = struct.unpack_from("=I", run, 8)[0]
        if exit_reason != KVM_EXIT_HLT:
            return False, f"a one-instruction guest exited with reason {exit_reason}, not HLT"
        return True, "a real-mode guest ran and halted under KVM"
    except OSError as exc:
        return False, f"KVM refused: {exc.strerror or exc}"
    finally:
        os.close(kvm)


BOOT_SECONDS = 30
REACHED = b"Kernel panic"  # the kernel ran to the end of its init, short of a root disk


def probe_boot(kernel: Path) -> tuple[bool, str]:
    """Stage 2: boot `kernel` under KVM with no disk; (booted, why)."""
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        argv = [
            "qemu-system-x86_64", "-accel", "kvm", "-m", "256", "-nodefaults",
            "-display", "none", "-no-reboot", "-serial", f"file:{console}",
            "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1",
        ]  # fmt: skip
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=BOOT_SECONDS)
        except FileNotFoundError:
            return False, "qemu-system-x86_64 is not installed"
        except subprocess.TimeoutExpired:
            proc = None
        output = console.read_bytes() if console.exists() else b""
    if REACHED in output:
        return True, f"{kernel.name} booted under KVM"
    if proc is None:
        return False, f"{kernel.name} did not boot under KVM in {BOOT_SECONDS} s"
    return False, f"qemu -accel kvm exited {proc.returncode}: {proc.stderr.decode()[-300:]}"


def default_kernel() -> Path:
    cache = os.environ.get("VNETCTL_VAGRANT_CACHE", "/var/cache/vnetctl-vagrant")
    return Path(cache) / "probe-vmlinuz"


def main(argv: list[str]) -> int:
    kernel = Path(argv[argv.index("--kernel") + 1]) if "--kernel" in argv else default_kernel()
    works, why = probe_ioctl()
    if works and kernel.is_file():
        works, why = probe_boot(kernel)
    elif works:
        why += f"; no kernel at {kernel} to boot, so the one-instruction test decides"
    if "-v" in argv:
        print(f"kvm_probe: {why}", file=sys.stderr)
    print("kvm" if works else "qemu")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
