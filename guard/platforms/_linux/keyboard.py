"""The X11 keyboard hook: pynput's listener on the RECORD extension, checked before it starts."""

from __future__ import annotations

import os

from guard.platforms._pynput_hook import PynputKeyboardHook
from guard.platforms.base import ErrorHandler, PlatformUnavailable

FIX = "make sure DISPLAY is set, the X server has the RECORD extension and pynput is installed"


def _preflight(display: str | None) -> None:
    """Refuse with the reason instead of letting pynput's thread die (it hangs without RECORD)."""
    name = display or os.environ.get("DISPLAY")
    if not name:
        raise PlatformUnavailable(f"DISPLAY is not set: the keyboard hook needs an X11 session; "
                                  f"{FIX}")
    try:
        from Xlib import display as xdisplay
        from Xlib.error import DisplayError
    except ImportError as exc:
        raise PlatformUnavailable("python-xlib is missing: pip install python-xlib") from exc
    try:
        conn = xdisplay.Display(name)
    except (DisplayError, OSError) as exc:
        raise PlatformUnavailable(f"cannot open X display {name}: {exc}; {FIX}") from exc
    try:
        if not conn.has_extension("RECORD"):
            raise PlatformUnavailable(f"the X server on {name} lacks the RECORD extension the "
                                      f"keyboard hook needs; {FIX}")
    finally:
        conn.close()


def keyboard_hook(on_error: ErrorHandler | None = None, *,
                  display: str | None = None) -> PynputKeyboardHook:
    """A global keyboard hook for this X session (`display` defaults to DISPLAY)."""
    return PynputKeyboardHook(on_error, fix=FIX, preflight=lambda: _preflight(display))
