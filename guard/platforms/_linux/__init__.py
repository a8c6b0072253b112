"""The Linux backend (X11 desktops): the session and machine bundles from this package's parts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guard.platforms._linux.machine import (
    FlockDataDirLock,
    LinuxMachinePaths,
    NoRegistry,
    ProcTable,
)
from guard.platforms.base import ErrorHandler, Machine, Session

if TYPE_CHECKING:
    from guard.platforms._pynput_hook import PynputKeyboardHook


def make_session(display: str | None = None) -> Session:
    """The teller's X11 session (`display` defaults to DISPLAY, read when first used)."""
    # imported here, not with the package: the machine side (the service, `teller-guard scan`
    # finding its data directory) needs none of the desktop's parts (PAM by ctypes, the X
    # session, the keyboard hook: ~13 ms of start-up)
    from guard.platforms._linux.keyboard import keyboard_hook
    from guard.platforms._linux.password import PamPasswordChecker
    from guard.platforms._linux.session import LinuxPlatform

    desk = LinuxPlatform(display=display)

    def keyboard(on_error: ErrorHandler | None = None) -> PynputKeyboardHook:
        return keyboard_hook(on_error, display=display)

    return Session(name="linux", idle=desk, lock=desk, clipboard=desk, locale=desk, desktop=desk,
                   password=PamPasswordChecker(), keyboard=keyboard)


def make_machine() -> Machine:
    return Machine(name="linux", paths=LinuxMachinePaths(), registry=NoRegistry(),
                   processes=ProcTable(), data_lock=FlockDataDirLock())
