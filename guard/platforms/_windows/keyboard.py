"""The Windows keyboard hook: pynput's listener on a low-level keyboard hook (WH_KEYBOARD_LL)."""

from __future__ import annotations

import sys

from guard.platforms._pynput_hook import PynputKeyboardHook
from guard.platforms.base import ErrorHandler, PlatformUnavailable

FIX = "run the agent in the teller's interactive session with pynput installed"


def _preflight() -> None:
    # Elsewhere pynput would pick its X11 or macOS backend: that is not this hook.
    if sys.platform != "win32":
        raise PlatformUnavailable("the Windows keyboard hook runs only on Windows")


def keyboard_hook(on_error: ErrorHandler | None = None) -> PynputKeyboardHook:
    """A global keyboard hook for this Windows session."""
    return PynputKeyboardHook(on_error, fix=FIX, preflight=_preflight)
