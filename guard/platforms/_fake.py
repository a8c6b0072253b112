"""A scripted platform for tests and headless runs: idle time, lock state and owner set by hand."""

from __future__ import annotations

import threading


class FakePlatform:
    """Every answer comes from attributes a test sets; calls are counted."""

    name = "fake"

    def __init__(self, *, idle: float = 0.0, lock_works: bool = True,
                 can_verify: bool = True, owner: str | None = None,
                 locale: str = "zh_CN") -> None:
        self._lock = threading.Lock()
        self.idle = idle
        self.lock_works = lock_works
        self.can_verify = can_verify
        self.owner = owner
        self.locale = locale
        self.locked = False
        self.lock_calls = 0

    def idle_seconds(self) -> float:
        with self._lock:
            return self.idle

    def lock_os(self) -> bool:
        with self._lock:
            self.lock_calls += 1
            if self.lock_works:
                self.locked = True
            return self.lock_works

    def is_os_locked(self) -> bool | None:
        with self._lock:
            return self.locked if self.can_verify else None

    def unlock_os(self) -> None:
        """What the teller does at the OS lock screen."""
        with self._lock:
            self.locked = False
            self.idle = 0.0

    def clipboard_owner_app(self) -> str | None:
        with self._lock:
            return self.owner

    def os_locale(self) -> str:
        return self.locale
