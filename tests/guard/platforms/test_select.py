"""`platforms.current()`: the environment override, then the OS; a wrong value says what is
valid."""

from __future__ import annotations

import pytest

from guard import platforms
from guard.platforms._fake import FakePlatform
from guard.platforms._linux import LinuxPlatform
from guard.platforms._windows import WindowsPlatform


@pytest.mark.parametrize(("value", "cls"), [("fake", FakePlatform), ("linux", LinuxPlatform),
                                            ("windows", WindowsPlatform), ("", LinuxPlatform)])
def test_selection(value: str, cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(platforms.ENV_PLATFORM, value)
    chosen = platforms.current()
    assert isinstance(chosen, cls)
    assert isinstance(chosen, platforms.Platform)


def test_unknown_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(platforms.ENV_PLATFORM, "amiga")
    with pytest.raises(platforms.PlatformUnavailable, match="not one of linux, windows, fake"):
        platforms.current()


def test_windows_backend_on_linux_says_why() -> None:
    p = WindowsPlatform()
    with pytest.raises(platforms.PlatformUnavailable, match="only on Windows"):
        p.idle_seconds()
    assert p.is_os_locked() is None and p.clipboard_owner_app() is None
