"""`platforms.current_session()` / `current_machine()`: the environment override, then the OS;
a wrong value says what is valid; an unsupported system and a failed import say how to fix it."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from typing import Any

import pytest

from guard import platforms
from guard.platforms._fake import FakeMachinePaths, FakePlatform
from guard.platforms._linux.machine import LinuxMachinePaths
from guard.platforms._linux.session import LinuxPlatform
from guard.platforms._windows.machine import WindowsMachinePaths
from guard.platforms._windows.session import WindowsPlatform


@pytest.mark.parametrize(("value", "cls", "paths"), [
    ("fake", FakePlatform, FakeMachinePaths), ("linux", LinuxPlatform, LinuxMachinePaths),
    ("windows", WindowsPlatform, WindowsMachinePaths), ("", LinuxPlatform, LinuxMachinePaths)])
def test_selection(value: str, cls: type, paths: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(platforms.ENV_PLATFORM, value)
    chosen = platforms.current()
    assert isinstance(chosen.idle, cls)
    assert isinstance(chosen, platforms.Platform)
    assert isinstance(platforms.current_session().idle, cls)
    assert isinstance(platforms.current_machine().paths, paths)


def test_unknown_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(platforms.ENV_PLATFORM, "amiga")
    with pytest.raises(platforms.PlatformUnavailable, match="not one of linux, windows, fake"):
        platforms.current()
    with pytest.raises(platforms.PlatformUnavailable, match="not one of linux, windows, fake"):
        platforms.current_machine()


def test_unsupported_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(platforms.ENV_PLATFORM, raising=False)
    monkeypatch.setattr(platforms.sys, "platform", "darwin")
    with pytest.raises(platforms.PlatformUnavailable,
                       match="no backend for darwin; it runs on Windows and Linux"):
        platforms.current_session()


def test_a_failed_import_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(platforms.ENV_PLATFORM, "linux")
    real_import = builtins.__import__

    def refuse(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("guard.platforms._linux") or (
                name == "guard.platforms" and "_linux" in (args[2] or ())):
            raise ImportError("No module named 'fcntl'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(platforms.PlatformUnavailable,
                       match=r"linux platform backend cannot load .*make sure DISPLAY is set"):
        platforms.current_machine()


def test_the_machine_side_loads_none_of_the_desktop_parts() -> None:
    # the service and `teller-guard scan` (its data directory) start without PAM, X or the hook
    code = ("import sys; from guard import platforms; m = platforms.current_machine(); "
            "print(m.name, sorted(n for n in sys.modules if n.startswith('guard.platforms._')))")
    env = {**os.environ, platforms.ENV_PLATFORM: "linux", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env).stdout
    assert out.split(" ", 1) == ["linux", "['guard.platforms._linux', "
                                          "'guard.platforms._linux.machine']\n"]


def test_windows_backend_on_linux_says_why() -> None:
    p = WindowsPlatform()
    with pytest.raises(platforms.PlatformUnavailable, match="only on Windows"):
        p.idle_seconds()
    assert p.is_os_locked() is None and p.clipboard_owner_app() is None


def test_the_fallback_session_reports_its_reason() -> None:
    s = platforms.unavailable_session("DISPLAY is not set")
    assert isinstance(s, platforms.Platform)
    with pytest.raises(platforms.PlatformUnavailable, match="DISPLAY is not set"):
        s.idle_seconds()
    assert (s.lock_os(), s.is_os_locked(), s.clipboard_owner_app()) == (False, None, None)
    assert not s.password.usable and s.password.reason == "DISPLAY is not set"
    hook = s.keyboard_hook()
    hook.register("<ctrl>+<alt>+l", lambda: None)
    with pytest.raises(platforms.PlatformUnavailable, match="DISPLAY is not set"):
        hook.start()
