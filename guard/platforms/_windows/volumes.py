"""Removable drives on Windows: drive letters from GetLogicalDrives whose GetDriveTypeW is
DRIVE_REMOVABLE, ejected with FSCTL_LOCK_VOLUME, FSCTL_DISMOUNT_VOLUME and
IOCTL_STORAGE_EJECT_MEDIA. A drive letter cannot be made read-only here (`remount` is False).

Importable on any OS: kernel32 is loaded only on Windows or handed in by tests (`DriveApi` is
the boundary); checked with ``mypy --platform win32``.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable
from ctypes import wintypes
from pathlib import Path
from typing import Any, Protocol

from guard.platforms.base import PlatformUnavailable, Volume

log = logging.getLogger(__name__)

DRIVE_REMOVABLE = 2
GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
FILE_SHARE_READ_WRITE = 0x3
OPEN_EXISTING = 3
FSCTL_LOCK_VOLUME = 0x00090018
FSCTL_DISMOUNT_VOLUME = 0x00090020
IOCTL_STORAGE_EJECT_MEDIA = 0x002D4808
INVALID_HANDLE = -1


class DriveApi(Protocol):
    """The kernel32 calls `WindowsVolumes` makes (the real one is `Kernel32Drives`)."""

    def logical_drives(self) -> int:
        """GetLogicalDrives: bit 0 is A:, bit 1 B: ..."""

    def drive_type(self, root: str) -> int:
        """GetDriveTypeW of ``E:\\``."""

    def file_system(self, root: str) -> str:
        """The file system name (FAT32, exFAT, NTFS), "" when unknown."""

    def eject(self, letter: str) -> bool:
        """Lock, dismount and eject the volume of ``E``."""


class Kernel32Drives:
    """kernel32 through ctypes (Windows only)."""

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise PlatformUnavailable("drive letters exist only on Windows")
        self.k: Any = ctypes.WinDLL("kernel32", use_last_error=True)
        self.last_error: Callable[[], int] = ctypes.get_last_error
        self.k.CreateFileW.restype = wintypes.HANDLE

    def logical_drives(self) -> int:
        return int(self.k.GetLogicalDrives())

    def drive_type(self, root: str) -> int:
        return int(self.k.GetDriveTypeW(root))

    def file_system(self, root: str) -> str:
        name = ctypes.create_unicode_buffer(64)
        if not self.k.GetVolumeInformationW(root, None, 0, None, None, None, name, 64):
            return ""
        return str(name.value)

    def eject(self, letter: str) -> bool:
        handle = self.k.CreateFileW(f"\\\\.\\{letter}:", GENERIC_READ | GENERIC_WRITE,
                                    FILE_SHARE_READ_WRITE, None, OPEN_EXISTING, 0, None)
        if handle in (None, INVALID_HANDLE, ctypes.c_void_p(-1).value):
            return False
        try:
            done = wintypes.DWORD(0)
            for code in (FSCTL_LOCK_VOLUME, FSCTL_DISMOUNT_VOLUME, IOCTL_STORAGE_EJECT_MEDIA):
                if not self.k.DeviceIoControl(handle, code, None, 0, None, 0,
                                              ctypes.byref(done), None):
                    log.warning("eject of %s: control %#x failed (%d)", letter, code,
                                self.last_error())
                    return False
            return True
        finally:
            self.k.CloseHandle(handle)


class WindowsVolumes:
    """`guard.platforms.base.RemovableVolumes` from drive letters."""

    def __init__(self, api: DriveApi | None = None) -> None:
        self._api = api

    def _need(self) -> DriveApi:
        if self._api is None:
            self._api = Kernel32Drives()
        return self._api

    def volumes(self, mount_points: tuple[str, ...] = ()) -> list[Volume]:
        api = self._need()
        named = {p.rstrip("\\/").upper() for p in mount_points if len(p.rstrip("\\/")) == 2}
        mask = api.logical_drives()
        out = []
        for i in range(26):
            if not mask & (1 << i):
                continue
            letter = chr(ord("A") + i)
            root = f"{letter}:\\"
            if api.drive_type(root) == DRIVE_REMOVABLE or f"{letter}:" in named:
                out.append(Volume(mount_point=Path(root), device=f"{letter}:",
                                  fs_type=api.file_system(root)))
        return out

    def remount(self, volume: Volume, *, read_only: bool) -> bool:
        log.info("%s cannot be made read-only from the service on Windows", volume.device)
        return False

    def eject(self, volume: Volume) -> bool:
        return self._need().eject(volume.device.rstrip(":"))
