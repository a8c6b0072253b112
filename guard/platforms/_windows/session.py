"""Windows 10/11 in plain ctypes: GetLastInputInfo idle time, LockWorkStation verified with
OpenInputDesktop, the clipboard owner's executable, the user's UI locale.

Importable on any OS (the DLLs are loaded only on Windows or handed in by tests) and checked with
``mypy --platform win32``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from ctypes import wintypes
from typing import Any

from guard.platforms.base import PlatformUnavailable

PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
DESKTOP_SWITCHDESKTOP = 0x0100
LOCALE_NAME_MAX_LENGTH = 85


class LASTINPUTINFO(ctypes.Structure):
    _fields_ = [("cbSize", wintypes.UINT), ("dwTime", wintypes.DWORD)]


class Win32Api:
    """The DLL functions this backend uses; tests hand in stand-ins with the same call shapes."""

    def __init__(self, user32: Any, kernel32: Any) -> None:
        self.user32 = user32
        self.kernel32 = kernel32

    @classmethod
    def load(cls) -> Win32Api:
        if sys.platform != "win32":
            raise PlatformUnavailable("the Windows backend runs only on Windows")
        user32 = ctypes.WinDLL("user32", use_last_error=True)
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        user32.GetLastInputInfo.argtypes = [ctypes.POINTER(LASTINPUTINFO)]
        user32.GetLastInputInfo.restype = wintypes.BOOL
        user32.LockWorkStation.restype = wintypes.BOOL
        user32.OpenInputDesktop.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        user32.OpenInputDesktop.restype = wintypes.HANDLE
        user32.CloseDesktop.argtypes = [wintypes.HANDLE]
        user32.SwitchDesktop.argtypes = [wintypes.HANDLE]
        user32.SwitchDesktop.restype = wintypes.BOOL
        user32.GetClipboardOwner.restype = wintypes.HWND
        user32.GetWindowThreadProcessId.argtypes = [wintypes.HWND, ctypes.POINTER(wintypes.DWORD)]
        user32.GetWindowThreadProcessId.restype = wintypes.DWORD
        kernel32.GetTickCount64.restype = ctypes.c_ulonglong
        kernel32.GetTickCount.restype = wintypes.DWORD
        kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
        kernel32.OpenProcess.restype = wintypes.HANDLE
        kernel32.QueryFullProcessImageNameW.argtypes = [
            wintypes.HANDLE, wintypes.DWORD, wintypes.LPWSTR, ctypes.POINTER(wintypes.DWORD)]
        kernel32.QueryFullProcessImageNameW.restype = wintypes.BOOL
        kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
        kernel32.GetUserDefaultLocaleName.argtypes = [wintypes.LPWSTR, ctypes.c_int]
        kernel32.GetUserDefaultLocaleName.restype = ctypes.c_int
        return cls(user32, kernel32)


class WindowsPlatform:
    """The Windows desktop of the logged-in teller."""

    name = "windows"

    def __init__(self, api: Win32Api | None = None) -> None:
        self._api = api
        self._reason = ""
        if self._api is None:
            try:
                self._api = Win32Api.load()
            except (PlatformUnavailable, OSError, AttributeError) as exc:
                self._reason = str(exc)

    def _need(self) -> Win32Api:
        if self._api is None:
            raise PlatformUnavailable(self._reason or "Windows APIs unavailable")
        return self._api

    def idle_seconds(self) -> float:
        api = self._need()
        info = LASTINPUTINFO()
        info.cbSize = ctypes.sizeof(LASTINPUTINFO)
        if not api.user32.GetLastInputInfo(ctypes.byref(info)):
            raise PlatformUnavailable("GetLastInputInfo failed")
        # dwTime is a 32-bit tick count: compare modulo 2**32 so it survives the 49.7-day wrap.
        now = int(api.kernel32.GetTickCount()) & 0xFFFFFFFF
        return float((now - int(info.dwTime)) & 0xFFFFFFFF) / 1000.0

    def lock_os(self) -> bool:
        api = self._need()
        return bool(api.user32.LockWorkStation())

    def is_os_locked(self) -> bool | None:
        """Locked when the input desktop is not the teller's (OpenInputDesktop/SwitchDesktop fail
        on the secure Winlogon desktop)."""
        try:
            api = self._need()
        except PlatformUnavailable:
            return None
        handle = api.user32.OpenInputDesktop(0, False, DESKTOP_SWITCHDESKTOP)
        if not handle:
            return True
        try:
            return not bool(api.user32.SwitchDesktop(handle))
        finally:
            api.user32.CloseDesktop(handle)

    def wait_locked(self, timeout_s: float = 2.0) -> bool:
        """Poll `is_os_locked` until it says True or `timeout_s` passes."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.is_os_locked():
                return True
            time.sleep(0.1)
        return False

    def clipboard_owner_app(self) -> str | None:
        try:
            api = self._need()
        except PlatformUnavailable:
            return None
        hwnd = api.user32.GetClipboardOwner()
        if not hwnd:
            return None
        pid = wintypes.DWORD(0)
        api.user32.GetWindowThreadProcessId(hwnd, ctypes.byref(pid))
        if not pid.value:
            return None
        process = api.kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid.value)
        if not process:
            return None
        try:
            size = wintypes.DWORD(1024)
            buf = ctypes.create_unicode_buffer(size.value)
            if not api.kernel32.QueryFullProcessImageNameW(process, 0, buf, ctypes.byref(size)):
                return None
            return os.path.basename(buf.value.replace("\\", "/")) or None
        finally:
            api.kernel32.CloseHandle(process)

    def os_locale(self) -> str:
        try:
            api = self._need()
        except PlatformUnavailable:
            return "en_US"
        buf = ctypes.create_unicode_buffer(LOCALE_NAME_MAX_LENGTH)
        if not api.kernel32.GetUserDefaultLocaleName(buf, LOCALE_NAME_MAX_LENGTH):
            return "en_US"
        return buf.value.replace("-", "_")

    def desktop_name(self) -> str:
        return os.environ.get("SESSIONNAME", "console")
