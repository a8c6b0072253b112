"""The Windows backend at its ctypes boundary: stand-in user32/kernel32 with the real call
shapes."""

from __future__ import annotations

import ctypes
from typing import Any

from guard.platforms._windows import LASTINPUTINFO, Win32Api, WindowsPlatform


class User32:
    def __init__(self) -> None:
        self.last_input = 0
        self.locked = False
        self.owner = 0
        self.locks = 0
        self.closed: list[int] = []

    def GetLastInputInfo(self, ref: Any) -> int:
        info = ref._obj
        assert isinstance(info, LASTINPUTINFO) and info.cbSize == ctypes.sizeof(LASTINPUTINFO)
        info.dwTime = self.last_input
        return 1

    def LockWorkStation(self) -> int:
        self.locks += 1
        self.locked = True
        return 1

    def OpenInputDesktop(self, flags: int, inherit: bool, access: int) -> int:
        return 0 if self.locked else 0x77

    def SwitchDesktop(self, handle: int) -> int:
        return 1

    def CloseDesktop(self, handle: int) -> int:
        self.closed.append(handle)
        return 1

    def GetClipboardOwner(self) -> int:
        return self.owner

    def GetWindowThreadProcessId(self, hwnd: int, pid_ref: Any) -> int:
        pid_ref._obj.value = 4242 if hwnd == 0x10 else 0
        return 1


class Kernel32:
    def __init__(self) -> None:
        self.ticks = 0
        self.closed: list[int] = []

    def GetTickCount(self) -> int:
        return self.ticks

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:
        return 0x99 if pid == 4242 else 0

    def QueryFullProcessImageNameW(self, process: int, flags: int, buf: Any, size_ref: Any
                                   ) -> int:
        buf.value = r"C:\Program Files\Core Banking\CoreBank.exe"
        size_ref._obj.value = len(buf.value)
        return 1

    def CloseHandle(self, handle: int) -> int:
        self.closed.append(handle)
        return 1

    def GetUserDefaultLocaleName(self, buf: Any, size: int) -> int:
        buf.value = "zh-CN"
        return 6


def make() -> tuple[WindowsPlatform, User32, Kernel32]:
    user, kernel = User32(), Kernel32()
    return WindowsPlatform(Win32Api(user, kernel)), user, kernel


def test_idle_seconds_survive_the_tick_wrap() -> None:
    p, user, kernel = make()
    user.last_input, kernel.ticks = 10_000, 250_000
    assert p.idle_seconds() == 240.0
    user.last_input, kernel.ticks = 0xFFFFFF00, 0x100  # GetTickCount wrapped after 49.7 days
    assert p.idle_seconds() == 0.512


def test_lock_and_verify_with_the_input_desktop() -> None:
    p, user, _ = make()
    assert p.is_os_locked() is False and user.closed == [0x77]
    assert p.lock_os() and user.locks == 1
    assert p.is_os_locked() is True
    assert p.wait_locked(0.5)


def test_clipboard_owner_executable_name() -> None:
    p, user, kernel = make()
    assert p.clipboard_owner_app() is None
    user.owner = 0x10
    assert p.clipboard_owner_app() == "CoreBank.exe"
    assert kernel.closed == [0x99]
    user.owner = 0x11  # a window whose process cannot be told
    assert p.clipboard_owner_app() is None


def test_locale() -> None:
    p, _, _ = make()
    assert p.os_locale() == "zh_CN"
