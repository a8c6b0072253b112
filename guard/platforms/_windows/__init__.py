"""The Windows 10/11 backend: the session and machine bundles from this package's parts."""

from __future__ import annotations

from guard.platforms._pynput_hook import PynputKeyboardHook
from guard.platforms._windows.keyboard import keyboard_hook
from guard.platforms._windows.machine import (
    MsvcrtDataDirLock,
    WindowsMachinePaths,
    WindowsPolicyRegistry,
    WindowsProcessTable,
)
from guard.platforms._windows.password import WindowsPasswordChecker
from guard.platforms._windows.session import WindowsPlatform
from guard.platforms.base import ErrorHandler, Machine, Session


def make_session() -> Session:
    """The logged-in teller's Windows session (the DLLs load here; off Windows each part says
    why it cannot run)."""
    desk = WindowsPlatform()

    def keyboard(on_error: ErrorHandler | None = None) -> PynputKeyboardHook:
        return keyboard_hook(on_error)

    return Session(name="windows", idle=desk, lock=desk, clipboard=desk, locale=desk,
                   desktop=desk, password=WindowsPasswordChecker(), keyboard=keyboard)


def make_machine() -> Machine:
    return Machine(name="windows", paths=WindowsMachinePaths(), registry=WindowsPolicyRegistry(),
                   processes=WindowsProcessTable(), data_lock=MsvcrtDataDirLock())
