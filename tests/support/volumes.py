"""Real mounted volumes for the USB tests: an ext4 loop image (root) and a FAT image through
fusefat (the kernel here has no vfat driver). udev does not run here and loop devices never say
removable, so the tests name the mount point in policy (``usb.mount_points``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


class VolumeUnavailable(RuntimeError):
    """A test volume cannot be made here; the message says what is missing."""


def _run(*argv: str) -> None:
    result = subprocess.run(list(argv), capture_output=True, check=False)
    if result.returncode != 0:
        raise VolumeUnavailable(f"{' '.join(argv)} failed: "
                                f"{result.stderr.decode(errors='replace').strip()}")


def ext4_missing() -> str | None:
    if os.geteuid() != 0:
        return "loop mounts need root (CI runs as root)"
    if not (shutil.which("mkfs.ext4") or Path("/usr/sbin/mkfs.ext4").exists()):
        return "mkfs.ext4 is not installed (apt-get install e2fsprogs)"
    if not Path("/dev/loop-control").exists():
        return "no loop devices here (/dev/loop-control missing)"
    return None


def fat_missing() -> str | None:
    if not shutil.which("fusefat"):
        return "fusefat is not installed (apt-get install fusefat)"
    if not (shutil.which("mkfs.fat") or Path("/usr/sbin/mkfs.fat").exists()):
        return "mkfs.fat is not installed (apt-get install dosfstools)"
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse here"
    return None


def _mounted(point: Path) -> bool:
    return any(line.split()[4] == str(point)
               for line in Path("/proc/self/mountinfo").read_text().splitlines())


def _unmount(point: Path) -> None:
    for _ in range(50):
        if not _mounted(point):
            return
        subprocess.run(["umount", str(point)], capture_output=True, check=False)
        if _mounted(point) and shutil.which("fusermount3"):
            subprocess.run(["fusermount3", "-u", "-z", str(point)], capture_output=True,
                           check=False)
        time.sleep(0.1)


@contextlib.contextmanager
def ext4_volume(root: Path, size_mb: int = 2048) -> Iterator[Path]:
    """A sparse ext4 image mounted through a loop device at `root`/mnt-ext4 (root only)."""
    reason = ext4_missing()
    if reason:
        raise VolumeUnavailable(reason)
    image, point = root / "stick-ext4.img", root / "mnt-ext4"
    point.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(size_mb * 1024 * 1024)
    _run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", str(image))
    _run("mount", "-o", "loop", str(image), str(point))
    os.chmod(point, 0o777)
    try:
        yield point
    finally:
        _unmount(point)
        image.unlink(missing_ok=True)


@contextlib.contextmanager
def fat_volume(root: Path, size_mb: int = 64) -> Iterator[Path]:
    """A FAT image mounted read-write with fusefat at `root`/mnt-fat."""
    reason = fat_missing()
    if reason:
        raise VolumeUnavailable(reason)
    image, point = root / "stick-fat.img", root / "mnt-fat"
    point.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(size_mb * 1024 * 1024)
    _run("mkfs.fat", str(image))
    _run("fusefat", "-o", "rw+", str(image), str(point))
    try:
        yield point
    finally:
        _unmount(point)
        image.unlink(missing_ok=True)
