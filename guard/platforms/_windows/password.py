"""The OS password check on Windows: LogonUserW (interactive logon type) through ctypes."""

from __future__ import annotations

import ctypes
import sys
from typing import Any


class WindowsPasswordChecker:
    """Windows LogonUserW (interactive logon type) via ctypes."""

    LOGON32_LOGON_INTERACTIVE = 2
    LOGON32_PROVIDER_DEFAULT = 0

    def __init__(self, advapi32: Any = None, kernel32: Any = None) -> None:
        self.usable = False
        self.reason = ""
        self._advapi32 = advapi32
        self._kernel32 = kernel32
        if advapi32 is None and sys.platform == "win32":
            self._advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
            self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        if self._advapi32 is None:
            self.reason = "LogonUserW exists only on Windows"
            return
        self.usable = True

    def check(self, user: str, password: str) -> bool:
        if not self.usable or not user:
            return False
        domain = "."
        if "\\" in user:
            domain, user = user.split("\\", 1)
        token = ctypes.c_void_p()
        ok = self._advapi32.LogonUserW(user, domain, password, self.LOGON32_LOGON_INTERACTIVE,
                                       self.LOGON32_PROVIDER_DEFAULT, ctypes.byref(token))
        if ok and token.value and self._kernel32 is not None:
            self._kernel32.CloseHandle(token)
        return bool(ok)
