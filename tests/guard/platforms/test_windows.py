"""The Windows backend at its OS boundary: stand-in user32/kernel32/advapi32, winreg and msvcrt
with the real call shapes, run through the same capability contracts as the other backends."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guard.platforms import PlatformUnavailable
from guard.platforms._windows.machine import (
    ERROR_ACCESS_DENIED,
    STILL_ACTIVE,
    Kernel32Processes,
    MsvcrtDataDirLock,
    WindowsMachinePaths,
    WindowsPolicyRegistry,
    WindowsProcessTable,
)
from guard.platforms._windows.password import WindowsPasswordChecker
from guard.platforms._windows.session import LASTINPUTINFO, Win32Api, WindowsPlatform
from tests.guard.platforms import contracts
from tests.support.windows_api import FakeAdvapi, FakeKernelHandles


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


def test_desktop_name_is_the_session_name(monkeypatch: pytest.MonkeyPatch) -> None:
    p, _, _ = make()
    monkeypatch.setenv("SESSIONNAME", "RDP-Tcp#3")
    assert p.desktop_name() == "RDP-Tcp#3"
    monkeypatch.delenv("SESSIONNAME")
    assert p.desktop_name() == "console"


# ---------------------------------------------------------------------------------------------
# The capability contracts at the ctypes boundary.


@pytest.fixture
def win() -> tuple[WindowsPlatform, User32, Kernel32]:
    p, user, kernel = make()
    user.last_input, kernel.ticks = 5_000, 5_000
    return p, user, kernel


@pytest.fixture
def idle_clock(win: tuple[WindowsPlatform, User32, Kernel32]) -> WindowsPlatform:
    return win[0]


@pytest.fixture
def advance(win: tuple[WindowsPlatform, User32, Kernel32]) -> Callable[[float], None]:
    def go(seconds: float) -> None:
        win[2].ticks += int(seconds * 1000)
    return go


@pytest.fixture
def touch(win: tuple[WindowsPlatform, User32, Kernel32]) -> Callable[[], None]:
    def go() -> None:
        win[1].last_input = win[2].ticks
    return go


class TestIdleClock(contracts.IdleClockContract):
    pass


@pytest.fixture
def session_lock(win: tuple[WindowsPlatform, User32, Kernel32]) -> WindowsPlatform:
    return win[0]


@pytest.fixture
def can_lock() -> bool:
    return True


class TestSessionLock(contracts.SessionLockContract):
    pass


@pytest.fixture
def clipboard_owner(win: tuple[WindowsPlatform, User32, Kernel32]) -> WindowsPlatform:
    return win[0]


@pytest.fixture
def own_clipboard(win: tuple[WindowsPlatform, User32, Kernel32]
                  ) -> Callable[[], tuple[str, Callable[[], None]]]:
    def own() -> tuple[str, Callable[[], None]]:
        win[1].owner = 0x10
        return "CoreBank.exe", lambda: setattr(win[1], "owner", 0)
    return own


class TestClipboardOwner(contracts.ClipboardOwnerContract):
    pass


@pytest.fixture
def ui_locale(win: tuple[WindowsPlatform, User32, Kernel32]) -> WindowsPlatform:
    return win[0]


@pytest.fixture
def expected_locale() -> str:
    return "zh_CN"


class TestUiLocale(contracts.UiLocaleContract):
    pass


@pytest.fixture
def password_check() -> WindowsPasswordChecker:
    return WindowsPasswordChecker(FakeAdvapi(), FakeKernelHandles())


@pytest.fixture
def account() -> tuple[str, str]:
    return "teller1", "Passw0rd!"


class TestPasswordCheck(contracts.PasswordCheckContract):
    def test_logon_user_boundary(self) -> None:
        advapi, kernel = FakeAdvapi(), FakeKernelHandles()
        checker = WindowsPasswordChecker(advapi, kernel)
        assert checker.usable
        assert checker.check("teller1", "Passw0rd!")
        assert kernel.closed == [0x1234]
        assert not checker.check("teller1", "wrong")
        assert not checker.check("BRANCH7\\teller1", "Passw0rd!")
        assert advapi.calls[-1] == ("LogonUserW", "teller1", "BRANCH7", 2)
        off = WindowsPasswordChecker()  # on Linux: says so instead of crashing
        assert not off.usable and "only on Windows" in off.reason


@pytest.fixture
def machine_paths(monkeypatch: pytest.MonkeyPatch) -> WindowsMachinePaths:
    monkeypatch.setenv("ProgramData", r"D:\ProgramData")
    return WindowsMachinePaths()


class TestMachinePaths(contracts.MachinePathsContract):
    def test_program_data(self, machine_paths: WindowsMachinePaths) -> None:
        assert machine_paths.machine_data_dir() == Path(r"D:\ProgramData") / "TellerGuard"
        assert machine_paths.machine_policy_file().name == "policy.toml"
        assert machine_paths.run_dir() is None


class FakeWinreg:
    """winreg at its boundary: HKLM\\Software\\Policies\\TellerGuard with the given values."""

    HKEY_LOCAL_MACHINE = object()
    REG_SZ, REG_DWORD, REG_MULTI_SZ = 1, 4, 7

    def __init__(self, values: list[tuple[str, object, int]] | None) -> None:
        self.values = values
        self.opened: list[str] = []

    class Key:
        def __enter__(self) -> FakeWinreg.Key:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    def OpenKey(self, root: object, path: str) -> FakeWinreg.Key:
        assert root is self.HKEY_LOCAL_MACHINE
        self.opened.append(path)
        if self.values is None:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return self.Key()

    def EnumValue(self, key: object, i: int) -> tuple[str, object, int]:
        assert self.values is not None
        if i >= len(self.values):
            raise OSError("no more data")
        return self.values[i]


REG_VALUES = [("version", "gpo-1", 1), ("idle.lock_after_s", 600, 4),
              ("clipboard.app_allowlist", ("CoreBank.exe", "Teller.exe"), 7)]


@pytest.fixture
def registry() -> WindowsPolicyRegistry:
    return WindowsPolicyRegistry(FakeWinreg(REG_VALUES))


@pytest.fixture
def registry_values() -> dict[str, Any]:
    return {"version": "gpo-1", "idle.lock_after_s": 600,
            "clipboard.app_allowlist": ["CoreBank.exe", "Teller.exe"]}


class TestPolicyRegistry(contracts.PolicyRegistryContract):
    def test_a_missing_key_is_no_values(self) -> None:
        reg = FakeWinreg(None)
        assert WindowsPolicyRegistry(reg).policy_values() == {}
        assert reg.opened == [r"Software\Policies\TellerGuard"]

    def test_off_windows_it_says_why(self) -> None:
        with pytest.raises(PlatformUnavailable, match="only on Windows"):
            WindowsPolicyRegistry().policy_values()


class FakeProcessKernel:
    """OpenProcess/GetExitCodeProcess: `alive` runs, `exited` has ended but is still open,
    `foreign` refuses access, anything else does not exist."""

    def __init__(self) -> None:
        self.alive = {os.getpid()}
        self.exited = {7001}
        self.foreign = {4}
        self.error = 0
        self.closed: list[int] = []

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:
        if pid in self.alive or pid in self.exited:
            self.error = 0
            return 0x5000 + pid
        self.error = ERROR_ACCESS_DENIED if pid in self.foreign else 87  # invalid parameter
        return 0

    def GetExitCodeProcess(self, handle: int, code_ref: Any) -> int:
        pid = handle - 0x5000
        code_ref._obj.value = STILL_ACTIVE if pid in self.alive else 0
        return 1

    def CloseHandle(self, handle: int) -> int:
        self.closed.append(handle)
        return 1


@pytest.fixture
def process_kernel() -> FakeProcessKernel:
    return FakeProcessKernel()


@pytest.fixture
def processes(process_kernel: FakeProcessKernel) -> WindowsProcessTable:
    return WindowsProcessTable(Kernel32Processes(process_kernel, lambda: process_kernel.error))


@pytest.fixture
def ended_pid() -> int:
    return 7001


class TestProcessTable(contracts.ProcessTableContract):
    def test_another_users_process_exists_and_handles_close(
            self, processes: WindowsProcessTable, process_kernel: FakeProcessKernel) -> None:
        assert processes.process_exists(4)  # access denied: it is there
        assert not processes.process_exists(123456)
        assert processes.process_exists(os.getpid())
        assert process_kernel.closed[-1] == 0x5000 + os.getpid()


class FakeMsvcrt:
    """msvcrt.locking at its boundary: one lock per file (by inode), refused while held."""

    LK_UNLCK, LK_NBLCK = 0, 2

    def __init__(self) -> None:
        self.locked: set[int] = set()

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1 and os.lseek(fd, 0, os.SEEK_CUR) == 0
        ino = os.fstat(fd).st_ino
        if mode == self.LK_NBLCK:
            if ino in self.locked:
                raise PermissionError(13, "Permission denied")
            self.locked.add(ino)
        else:
            self.locked.discard(ino)


@pytest.fixture
def data_lock() -> MsvcrtDataDirLock:
    return MsvcrtDataDirLock(FakeMsvcrt())


class TestDataDirLock(contracts.DataDirLockContract):
    def test_off_windows_it_says_why(self, tmp_path: Path) -> None:
        with pytest.raises(PlatformUnavailable, match="only on Windows"):
            MsvcrtDataDirLock().hold(tmp_path)


def test_the_keyboard_hook_off_windows_says_why() -> None:
    from guard.platforms._windows.keyboard import keyboard_hook

    hook = keyboard_hook()
    hook.register("<ctrl>+<alt>+l", lambda: None)
    with pytest.raises(PlatformUnavailable, match="only on Windows"):
        hook.start()
