"""The lock-now hotkey (Ctrl+Alt+L) on the core's global keyboard hook (`KeyboardHook`).

The callback runs on the hook's listener thread, never on the Qt thread. When the hook cannot
run on this desktop, or its listener dies later, the hotkey is reported unavailable with the
reason, and the tray's "Lock now" still works.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from guard.platforms import KeyboardHook, PlatformUnavailable

log = logging.getLogger(__name__)

LOCK_HOTKEY = "<ctrl>+<alt>+l"


class LockHotkey:
    """Calls `on_lock()` when the teller presses the lock-now hotkey anywhere on the desktop.

    `hook` is the session's keyboard hook (`Session.keyboard_hook(on_error=...)`); this class
    registers its combo and starts the hook. `on_unavailable(reason)` is called when the hook
    refuses or its listener dies."""

    def __init__(self, on_lock: Callable[[], None], hook: KeyboardHook,
                 combo: str = LOCK_HOTKEY) -> None:
        self._on_lock = on_lock
        self._hook = hook
        self._combo = combo
        self.unavailable: str | None = None

    def start(self) -> bool:
        """Start listening; False (and `unavailable` says why) when the desktop refuses."""
        self._hook.register(self._combo, self._fire)
        try:
            self._hook.start()
        except PlatformUnavailable as exc:
            self.unavailable = str(exc)
            log.warning("lock hotkey unavailable: %s", self.unavailable)
            return False
        log.info("lock hotkey %s active", self._combo)
        return True

    def hook_failed(self, exc: BaseException) -> None:
        """The hook's `on_error`: a dead listener makes the hotkey unavailable."""
        if isinstance(exc, PlatformUnavailable):
            self.unavailable = str(exc)
            log.warning("lock hotkey unavailable: %s", self.unavailable)
        else:
            log.error("the lock hotkey's callback failed: %r", exc)

    def _fire(self) -> None:
        log.info("lock hotkey pressed")
        try:
            self._on_lock()
        except Exception:  # the lock's own failure: the hotkey itself still works
            log.exception("locking from the hotkey failed")

    def stop(self) -> None:
        """Stop listening without waiting (pynput's stop returns only after the next input)."""
        self._hook.stop()
