"""Which operating-system backend this process uses: `current_session()` and `current_machine()`.

Selection (like pynput's `backend()` and mss's `_choose_impl`): the environment override
TELLER_GUARD_PLATFORM (``linux``, ``windows``, ``fake``), else `sys.platform`. Each backend's OS
imports happen inside its branch, so a missing library fails with a readable fix instead of at
import time, and an unsupported system gets one clear error. The capabilities themselves are
the protocols in `guard.platforms.base`.
"""

from __future__ import annotations

import os
import sys

from guard.platforms.base import (
    CAPTURE_HOTKEYS,
    ClipboardOwner,
    DataDirBusy,
    DataDirLock,
    DesktopName,
    HeldLock,
    IdleClock,
    KeyboardHook,
    Machine,
    MachinePaths,
    PasswordCheck,
    Platform,
    PlatformUnavailable,
    PolicyRegistry,
    PrintSpooler,
    ProcessTable,
    Program,
    ProgramList,
    RemovableVolumes,
    Session,
    SessionLock,
    UiLocale,
    unavailable_session,
)

__all__ = [
    "CAPTURE_HOTKEYS", "ENV_PLATFORM", "ClipboardOwner", "DataDirBusy", "DataDirLock",
    "DesktopName", "HeldLock", "IdleClock", "KeyboardHook", "Machine", "MachinePaths",
    "PasswordCheck", "Platform", "PlatformUnavailable", "PolicyRegistry", "PrintSpooler",
    "ProcessTable", "Program", "ProgramList", "RemovableVolumes", "Session", "SessionLock",
    "UiLocale", "current", "current_machine", "current_session", "print_spooler", "program_list",
    "removable_volumes", "unavailable_session",
]

ENV_PLATFORM = "TELLER_GUARD_PLATFORM"
CHOICES = ("linux", "windows", "fake")

_FIXES = {
    "linux": "install python-xlib (pip install python-xlib), make sure DISPLAY is set",
    "windows": "reinstall Teller Guard: its Windows modules are incomplete",
    "fake": "the test backend ships with the package: reinstall Teller Guard",
}


def _choice() -> str:
    choice = os.environ.get(ENV_PLATFORM, "").strip().lower()
    if choice:
        if choice not in CHOICES:
            raise PlatformUnavailable(
                f"{ENV_PLATFORM}={choice!r} is not one of {', '.join(CHOICES)}")
        return choice
    if sys.platform == "win32":
        return "windows"
    if sys.platform.startswith("linux"):
        return "linux"
    raise PlatformUnavailable(
        f"Teller Guard has no backend for {sys.platform}; it runs on Windows and Linux "
        f"(set {ENV_PLATFORM}=fake to run without one)")


def _unloadable(choice: str, exc: ImportError) -> PlatformUnavailable:
    return PlatformUnavailable(f"the {choice} platform backend cannot load ({exc}); "
                               f"{_FIXES[choice]}")


def current_session() -> Session:
    """The desktop capabilities of the teller's session on this system."""
    choice = _choice()
    try:
        if choice == "linux":
            from guard.platforms import _linux

            return _linux.make_session()
        if choice == "windows":
            from guard.platforms import _windows

            return _windows.make_session()
        from guard.platforms import _fake

        return _fake.fake_session()
    except ImportError as exc:
        raise _unloadable(choice, exc) from exc


def current_machine() -> Machine:
    """The machine-side capabilities of the service on this system."""
    choice = _choice()
    try:
        if choice == "linux":
            from guard.platforms import _linux

            return _linux.make_machine()
        if choice == "windows":
            from guard.platforms import _windows

            return _windows.make_machine()
        from guard.platforms import _fake

        return _fake.fake_machine()
    except ImportError as exc:
        raise _unloadable(choice, exc) from exc


def print_spooler() -> PrintSpooler:
    """The machine's print spooler for the print guard (CUPS, the Windows spooler, a fake)."""
    choice = _choice()
    try:
        if choice == "linux":
            from guard.platforms._linux.cups import CupsSpooler

            return CupsSpooler()
        if choice == "windows":
            from guard.platforms._windows.spooler import WindowsSpooler

            return WindowsSpooler()
        from guard.platforms._fake import FakeSpooler

        return FakeSpooler()
    except ImportError as exc:
        raise _unloadable(choice, exc) from exc


def removable_volumes() -> RemovableVolumes:
    """The machine's removable volumes for the USB guard (mounts, drive letters, a fake)."""
    choice = _choice()
    try:
        if choice == "linux":
            from guard.platforms._linux.volumes import LinuxVolumes

            return LinuxVolumes()
        if choice == "windows":
            from guard.platforms._windows.volumes import WindowsVolumes

            return WindowsVolumes()
        from guard.platforms._fake import FakeVolumes

        return FakeVolumes()
    except ImportError as exc:
        raise _unloadable(choice, exc) from exc


def program_list() -> ProgramList:
    """This machine's process list for the remote-control watch: /proc on Linux (psutil would
    add ~1.3 MB to the agent for what /proc gives directly), psutil elsewhere (Windows). Chosen
    by the system, not TELLER_GUARD_PLATFORM: the fake desktop still runs real processes."""
    if sys.platform.startswith("linux"):
        from guard.platforms._linux.programs import ProcPrograms

        return ProcPrograms()
    from guard.platforms._psutil_programs import PsutilPrograms

    return PsutilPrograms()


def current() -> Session:
    """The session bundle: the name earlier callers use for `current_session()`."""
    return current_session()
