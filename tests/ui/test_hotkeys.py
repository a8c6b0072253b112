"""The lock-now hotkey on the core's keyboard hook (the fake one; the real X11 key press is in
tests/ui/x11/test_x11_lock.py)."""

from __future__ import annotations

from guard.platforms import PlatformUnavailable
from guard.platforms._fake import FakeKeyboardHook
from tests.support.xserver import wait_until
from ui.hotkeys import LOCK_HOTKEY, LockHotkey


def test_the_hotkey_locks_and_a_dead_listener_makes_it_unavailable() -> None:
    locks: list[int] = []
    hotkey: LockHotkey | None = None
    hook = FakeKeyboardHook(lambda exc: hotkey.hook_failed(exc) if hotkey else None)
    hotkey = LockHotkey(lambda: locks.append(1), hook)
    assert hotkey.start() and hotkey.unavailable is None
    hook.tap(LOCK_HOTKEY)
    assert hook.flush() and locks == [1]
    hook.die("X connection lost")
    assert wait_until(lambda: hotkey.unavailable is not None)
    assert "X connection lost" in (hotkey.unavailable or "")
    hotkey.stop()


def test_a_refusing_desktop_leaves_the_hotkey_unavailable() -> None:
    hotkey = LockHotkey(lambda: None, FakeKeyboardHook(refuse="the X server lacks RECORD"))
    assert not hotkey.start()
    assert hotkey.unavailable == "the X server lacks RECORD"


def test_a_failing_lock_leaves_the_hotkey_working() -> None:
    seen: list[BaseException] = []
    hook = FakeKeyboardHook(seen.append)
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise PlatformUnavailable("overlay gone")

    hotkey = LockHotkey(broken, hook)
    assert hotkey.start()
    hook.tap(LOCK_HOTKEY)
    hook.tap(LOCK_HOTKEY)
    assert hook.flush() and calls == [1, 1]
    assert seen == [] and hotkey.unavailable is None  # logged, not a dead hook
    hotkey.stop()
