"""The lab's guest image (vnetctl.lab.vm.image) built for real from Debian's kernel
package: into an empty cache, by two builders at once (two test runs on one machine),
which agree on the bytes and leave no half-built directory behind.

The kernel package comes from the machine's cache (/var/cache/vnetctl-lab/debs, or
VNETCTL_LAB_CACHE), fetched there with `apt-get download` by the first test that needs
it; this module builds into a cache of its own, the package linked in."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from vnetctl.lab.vm import image

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("dpkg-deb", "apt-get", "modinfo")),
    reason="needs Debian's dpkg-deb, apt-get and modinfo",
)


def test_two_builders_at_once_into_an_empty_cache_agree(tmp_path, monkeypatch):
    deb = image.kernel_deb(print)  # from the machine's cache: downloaded once, kept
    (tmp_path / "debs").mkdir()
    (tmp_path / "debs" / deb.name).symlink_to(deb)
    monkeypatch.setattr(image, "CACHE", tmp_path)
    # both builders past "is it built?" before either publishes: the race, every time
    both_building = threading.Barrier(2, timeout=60)
    read_package = image._read_package

    def read_then_meet(path):
        read = read_package(path)
        both_building.wait()
        return read

    monkeypatch.setattr(image, "_read_package", read_then_meet)
    with ThreadPoolExecutor(max_workers=2) as pool:
        built = [f.result(timeout=300) for f in [pool.submit(image.guest_image) for _ in "ab"]]

    assert built[0] == built[1]
    assert built[0].kernel.stat().st_size > 1 << 20 and built[0].initrd.stat().st_size > 1 << 19
    assert [p.name for p in (tmp_path / "guest").iterdir()] == [built[0].digest]
    assert image.guest_image() == built[0]  # the cached image, not built again
