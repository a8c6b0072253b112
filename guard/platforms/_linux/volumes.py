"""Removable volumes on Linux: mounts read from /proc/self/mountinfo, remounted and unmounted
with mount(8)/umount(8) (the service is root).

A mount counts as removable when it is under /media or /run/media (where desktops mount
sticks), when its block device says ``removable`` in sysfs, or when it is at or under a mount
point policy names (``usb.mount_points``: udev-less systems, loop images in tests).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from guard.platforms.base import Volume

log = logging.getLogger(__name__)

DESKTOP_ROOTS = ("/media", "/run/media")
MOUNTINFO = Path("/proc/self/mountinfo")
COMMAND_TIMEOUT_S = 10.0


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[tuple[str, Path, str, str, bool]]:
    """(major:minor, mount point, fs type, source, read-only) of every mount in `text`."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        options = fields[5].split(",")
        mounts.append((fields[2], Path(_unescape(fields[4])), tail[0], _unescape(tail[1]),
                       "ro" in options))
    return mounts


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _removable_device(dev: str, sysfs: Path) -> bool:
    """True when the block device `dev` (major:minor) or its parent disk says removable."""
    node = sysfs / "dev" / "block" / dev
    try:
        real = node.resolve(strict=True)
    except OSError:
        return False
    for candidate in (real, real.parent):
        try:
            if (candidate / "removable").read_text().strip() == "1":
                return True
        except OSError:
            continue
    return False


class LinuxVolumes:
    """`guard.platforms.base.RemovableVolumes` from mountinfo, mount(8) and umount(8)."""

    def __init__(self, mountinfo: Path = MOUNTINFO, sysfs: Path = Path("/sys")) -> None:
        self._mountinfo = mountinfo
        self._sysfs = sysfs

    def volumes(self, mount_points: tuple[str, ...] = ()) -> list[Volume]:
        try:
            text = self._mountinfo.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.warning("cannot read %s: %s", self._mountinfo, exc)
            return []
        named = [Path(p) for p in mount_points]
        roots = [Path(r) for r in DESKTOP_ROOTS]
        found: dict[Path, Volume] = {}
        for dev, point, fs_type, source, read_only in parse_mountinfo(text):
            removable = (any(_under(point, p) for p in named)
                         or any(root in point.parents for root in roots)
                         or (source.startswith("/dev/") and
                             _removable_device(dev, self._sysfs)))
            if removable:
                # a later line for the same point is the mount on top: it is what is seen
                found[point] = Volume(mount_point=point, device=source, fs_type=fs_type,
                                      read_only=read_only)
        return list(found.values())

    def _run(self, argv: list[str]) -> bool:
        try:
            result = subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT_S,
                                    check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("%s failed: %s", argv[0], exc)
            return False
        if result.returncode != 0:
            log.warning("%s failed (%d): %s", " ".join(argv), result.returncode,
                        result.stderr.decode(errors="replace").strip()[:300])
            return False
        return True

    def remount(self, volume: Volume, *, read_only: bool) -> bool:
        if volume.fs_type.startswith("fuse"):
            log.info("%s is a FUSE file system: it cannot be remounted %s", volume.mount_point,
                     "read-only" if read_only else "read-write")
            return False
        mode = "ro" if read_only else "rw"
        if not self._run(["mount", "-o", f"remount,{mode}", str(volume.mount_point)]):
            return False
        now = {v.mount_point: v for v in self.volumes((str(volume.mount_point),))}
        current = now.get(volume.mount_point)
        return current is not None and current.read_only == read_only

    def eject(self, volume: Volume) -> bool:
        point = str(volume.mount_point)
        if volume.fs_type.startswith("fuse") and shutil.which("fusermount3"):
            if self._run(["fusermount3", "-u", point]):
                return True
        if not self._run(["umount", point]):
            return False
        if volume.device.startswith("/dev/") and shutil.which("eject") and \
                not os.path.basename(volume.device).startswith("loop"):
            self._run(["eject", volume.device])  # best effort: the medium may not eject
        return True
