"""The lock-now hotkey (Ctrl+Alt+L) as a global key listener (pynput; on X11 it needs RECORD).

The callback runs on pynput's listener thread, never on the Qt thread. When the listener cannot
run on this desktop the hotkey is reported unavailable with the reason, and the tray's "Lock now"
still works.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

LOCK_HOTKEY = "<ctrl>+<alt>+l"
READY_TIMEOUT_S = 3.0


class LockHotkey:
    """Calls `on_lock()` when the teller presses the lock-now hotkey anywhere on the desktop."""

    def __init__(self, on_lock: Callable[[], None], combo: str = LOCK_HOTKEY) -> None:
        self._on_lock = on_lock
        self._combo = combo
        self._listener: Any = None
        self.unavailable: str | None = None

    def start(self) -> bool:
        """Start listening; False (and `unavailable` says why) when the desktop refuses."""
        try:
            from pynput import keyboard
        except Exception as exc:  # pynput raises ImportError or its own errors without a display
            self.unavailable = f"pynput cannot run here: {exc}"
            log.warning("lock hotkey unavailable: %s", self.unavailable)
            return False
        try:
            listener = keyboard.GlobalHotKeys({self._combo: self._fire})
            listener.daemon = True
            listener.start()
        except Exception as exc:  # e.g. the X server lacks the RECORD extension
            self.unavailable = f"key listener failed: {exc}"
            log.warning("lock hotkey unavailable: %s", self.unavailable)
            return False
        # wait() never returns when the listener thread died (no RECORD): bound it.
        waiter = threading.Thread(target=listener.wait, name="hotkey-wait", daemon=True)
        waiter.start()
        waiter.join(READY_TIMEOUT_S)
        if waiter.is_alive() or not listener.is_alive():
            self.unavailable = "key listener did not start (does the X server have RECORD?)"
            log.warning("lock hotkey unavailable: %s", self.unavailable)
            return False
        self._listener = listener
        log.info("lock hotkey %s active", self._combo)
        return True

    def _fire(self) -> None:
        log.info("lock hotkey pressed")
        try:
            self._on_lock()
        except Exception:
            log.exception("locking from the hotkey failed")

    def stop(self) -> None:
        """Stop listening without waiting (pynput's stop returns only after the next input)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            threading.Thread(target=listener.stop, name="hotkey-stop", daemon=True).start()
