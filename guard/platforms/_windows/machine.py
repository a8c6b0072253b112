"""The Windows machine side: ProgramData paths, Group Policy values from the registry,
OpenProcess for processes, a msvcrt byte lock for the data directory.

Importable on any OS: `winreg`, `msvcrt` and kernel32 are loaded only when used on Windows or
handed in by tests; checked with ``mypy --platform win32``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import wintypes
from pathlib import Path
from typing import Any

from guard.platforms.base import LOCK_FILE_NAME, DataDirBusy, PlatformUnavailable

POLICY_KEY = r"Software\Policies\TellerGuard"
APP_DIR = "TellerGuard"
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
STILL_ACTIVE = 259
ERROR_ACCESS_DENIED = 5


class WindowsMachinePaths:
    """%ProgramData%\\TellerGuard for data and the machine policy file."""

    def _base(self) -> Path:
        return Path(os.environ.get("ProgramData", r"C:\ProgramData")) / APP_DIR

    def machine_data_dir(self) -> Path:
        return self._base()

    def run_dir(self) -> Path | None:
        return None  # the local channel is a named pipe, not a file

    def machine_policy_file(self) -> Path:
        return self._base() / "policy.toml"


def _load_winreg() -> Any:
    if sys.platform != "win32":
        raise PlatformUnavailable("the Windows registry exists only on Windows")
    import winreg

    return winreg


class WindowsPolicyRegistry:
    """HKLM\\Software\\Policies\\TellerGuard, one value per dotted key (``idle.lock_after_s``);
    REG_MULTI_SZ values become lists. A missing key is no values."""

    source: str | None = "HKLM\\" + POLICY_KEY

    def __init__(self, winreg: Any = None) -> None:
        self._winreg = winreg

    def policy_values(self) -> dict[str, Any]:
        reg = self._winreg if self._winreg is not None else _load_winreg()
        try:
            key = reg.OpenKey(reg.HKEY_LOCAL_MACHINE, POLICY_KEY)
        except OSError:
            return {}
        values: dict[str, Any] = {}
        with key:
            i = 0
            while True:
                try:
                    name, value, kind = reg.EnumValue(key, i)
                except OSError:
                    break  # ERROR_NO_MORE_ITEMS
                i += 1
                values[str(name)] = list(value) if kind == reg.REG_MULTI_SZ else value
        return values


class Kernel32Processes:
    """The kernel32 calls `WindowsProcessTable` makes; tests hand in stand-ins."""

    def __init__(self, kernel32: Any, last_error: Any) -> None:
        self.kernel32 = kernel32
        self.last_error = last_error

    @classmethod
    def load(cls) -> Kernel32Processes:
        if sys.platform != "win32":
            raise PlatformUnavailable("kernel32 exists only on Windows")
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        kernel32.OpenProcess.restype = wintypes.HANDLE
        kernel32.GetExitCodeProcess.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD)]
        kernel32.GetExitCodeProcess.restype = wintypes.BOOL
        kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
        return cls(kernel32, ctypes.get_last_error)


class WindowsProcessTable:
    """A process exists while OpenProcess opens it and its exit code is STILL_ACTIVE; one that
    refuses access (another user's, a service's) exists too."""

    def __init__(self, api: Kernel32Processes | None = None) -> None:
        self._api = api

    def _need(self) -> Kernel32Processes:
        if self._api is None:
            self._api = Kernel32Processes.load()
        return self._api

    def user_has_processes(self, login: str) -> bool | None:
        # Not built: WTSEnumerateSessions would tell; the service then waits its short grace
        # for a teller's agent rather than cancel at once.
        return None

    def process_exists(self, pid: int) -> bool:
        if pid <= 0:
            return False
        api = self._need()
        handle = api.kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return bool(api.last_error() == ERROR_ACCESS_DENIED)
        try:
            code = wintypes.DWORD(0)
            if not api.kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True  # opened, so it is there; only its state is unknown
            return code.value == STILL_ACTIVE
        finally:
            api.kernel32.CloseHandle(handle)


def _load_msvcrt() -> Any:
    if sys.platform != "win32":
        raise PlatformUnavailable("msvcrt file locks exist only on Windows")
    import msvcrt

    return msvcrt


class MsvcrtHeld:
    def __init__(self, path: Path, fd: int, msvcrt: Any) -> None:
        self.path = path
        self._fd: int | None = fd
        self._msvcrt = msvcrt

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                self._msvcrt.locking(fd, self._msvcrt.LK_UNLCK, 1)
            finally:
                os.close(fd)


class MsvcrtDataDirLock:
    """A non-blocking lock on the first byte of ``<dir>\\service.lock`` (LockFileEx underneath),
    held by the open file until release or exit."""

    def __init__(self, msvcrt: Any = None) -> None:
        self._msvcrt = msvcrt

    def hold(self, directory: Path) -> MsvcrtHeld:
        lib = self._msvcrt if self._msvcrt is not None else _load_msvcrt()
        path = Path(directory) / LOCK_FILE_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            lib.locking(fd, lib.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            raise DataDirBusy(f"another process holds {path}") from None
        return MsvcrtHeld(path, fd, lib)
