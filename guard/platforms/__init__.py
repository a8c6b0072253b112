"""The desktop this agent runs on: idle time, OS lock, clipboard owner, locale.

`current()` picks the backend: the environment override TELLER_GUARD_PLATFORM (``linux``,
``windows``, ``fake``), else `sys.platform`. Each backend imports its OS modules inside its own
module, so a missing library fails with a readable reason instead of at import time.
"""

from __future__ import annotations

import os
import sys
from typing import Protocol, runtime_checkable

ENV_PLATFORM = "TELLER_GUARD_PLATFORM"


class PlatformUnavailable(RuntimeError):
    """A platform feature cannot run on this desktop; the message says why and how to fix it."""


@runtime_checkable
class Platform(Protocol):
    """What the core needs from the desktop. Every method may be called from any thread."""

    name: str

    def idle_seconds(self) -> float:
        """Seconds since the last keyboard/pointer input. Raises `PlatformUnavailable`."""

    def lock_os(self) -> bool:
        """Ask the OS to lock the session; True when some lock command was accepted
        (not proof that it locked: see `is_os_locked`). Blocks ≤ a few seconds."""

    def is_os_locked(self) -> bool | None:
        """True/False when the platform can tell whether the session is locked, else None."""

    def clipboard_owner_app(self) -> str | None:
        """The executable name of the application owning the clipboard, if it can be told."""

    def os_locale(self) -> str:
        """The OS user-interface locale, e.g. ``zh_CN`` or ``en_US``."""


def current() -> Platform:
    """The platform backend for this process (see the module docstring for the selection)."""
    choice = os.environ.get(ENV_PLATFORM, "").strip().lower()
    if not choice:
        if sys.platform == "win32":
            choice = "windows"
        elif sys.platform.startswith("linux"):
            choice = "linux"
        else:
            raise PlatformUnavailable(
                f"Teller Guard has no desktop backend for {sys.platform}; "
                f"set {ENV_PLATFORM}=fake to run without one"
            )
    if choice == "linux":
        from guard.platforms._linux import LinuxPlatform

        return LinuxPlatform()
    if choice == "windows":
        from guard.platforms._windows import WindowsPlatform

        return WindowsPlatform()
    if choice == "fake":
        from guard.platforms._fake import FakePlatform

        return FakePlatform()
    raise PlatformUnavailable(f"{ENV_PLATFORM}={choice!r} is not one of linux, windows, fake")
