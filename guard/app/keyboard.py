"""The session's one global keyboard hook, shared by every part that listens for hotkeys.

The screen-capture watcher (PrintScreen, Win+Shift+S …) and the UI's lock-now hotkey register
their combos on the same hook: one listener per session, one X RECORD client or Windows
low-level hook. Each user `start()`s and `stop()`s it; the listener stops when the last one did.
A listener error goes to every subscribed `on_error` handler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from guard.platforms import KeyboardHook, PlatformUnavailable

log = logging.getLogger(__name__)

ErrorHandler = Callable[[BaseException], None]
HookMaker = Callable[[ErrorHandler], KeyboardHook]


class SharedKeyboardHook:
    """A `KeyboardHook` several owners share (reference-counted start/stop, fan-out errors).

    `make(on_error)` builds the platform's hook (`Session.keyboard_hook`); it is built on the
    first `start()`. Combos registered before or after that reach the real hook."""

    def __init__(self, make: HookMaker) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._hook: KeyboardHook | None = None
        self._combos: list[tuple[str, Callable[[], None]]] = []
        self._handlers: list[ErrorHandler] = []
        self._users = 0
        self.unavailable: str | None = None

    def on_error(self, handler: ErrorHandler) -> None:
        """Call `handler(exc)` (listener thread) when the hook or a callback fails."""
        with self._lock:
            self._handlers.append(handler)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, PlatformUnavailable):
            self.unavailable = str(exc)
        with self._lock:
            handlers = list(self._handlers)
        if not handlers:
            log.error("keyboard hook error: %r", exc)
        for handler in handlers:
            try:
                handler(exc)
            except Exception:
                log.exception("a keyboard hook error handler failed")

    def register(self, combo: str, callback: Callable[[], None]) -> None:
        with self._lock:
            self._combos.append((combo, callback))
            hook = self._hook
        if hook is not None:
            hook.register(combo, callback)

    def start(self) -> None:
        """Start the listener (the first user) or join it; `PlatformUnavailable` when the
        desktop refuses (every later `start()` retries)."""
        with self._lock:
            hook = self._hook
            if hook is None:
                hook = self._hook = self._make(self._failed)
                for combo, callback in self._combos:
                    hook.register(combo, callback)
        try:
            hook.start()  # idempotent on a running hook
        except PlatformUnavailable as exc:
            self.unavailable = str(exc)
            with self._lock:
                if self._hook is hook:
                    self._hook = None  # the next start builds a fresh one
            raise
        with self._lock:
            self._users += 1
            self.unavailable = None

    def stop(self) -> None:
        """This user is done; the listener stops when nobody uses it any more."""
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            hook = self._hook if self._users == 0 else None
            if hook is not None:
                self._hook = None
        if hook is not None:
            hook.stop()

    def check(self) -> None:
        with self._lock:
            hook = self._hook
        if hook is not None:
            hook.check()

    @property
    def users(self) -> int:
        return self._users
