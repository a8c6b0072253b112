"""The Linux backend against a real X server: idle time grows while nobody types and xdotool input
resets it; the clipboard owner is the process behind xclip's window; lock commands at their
boundary (no logind or screensaver service runs here)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence

import pytest

from guard.platforms import PlatformUnavailable
from guard.platforms._linux import CommandResult, LinuxPlatform, _locale_from_env
from tests.support.xserver import wait_until, x_env, xvfb

pytestmark = pytest.mark.x11


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


@pytest.fixture
def platform(display: str) -> Iterator[LinuxPlatform]:
    p = LinuxPlatform(display=display)
    yield p
    p.close()


def test_idle_grows_while_waiting_and_input_resets_it(platform: LinuxPlatform,
                                                      display: str) -> None:
    first = platform.idle_seconds()
    time.sleep(0.5)
    later = platform.idle_seconds()
    assert later > first  # nobody typed: idle time only grows
    subprocess.run(["xdotool", "mousemove", "100", "100", "mousemove", "300", "200"],
                   env=x_env(display), check=True, timeout=10)
    assert platform.idle_seconds() < later
    time.sleep(0.3)
    before_key = platform.idle_seconds()
    subprocess.run(["xdotool", "key", "shift"], env=x_env(display), check=True, timeout=10)
    assert platform.idle_seconds() < before_key


def test_clipboard_owner_is_xclip(platform: LinuxPlatform, display: str) -> None:
    assert shutil.which("xclip")
    proc = subprocess.Popen(["xclip", "-selection", "clipboard", "-loops", "1"],
                            stdin=subprocess.PIPE, env=x_env(display))
    try:
        assert proc.stdin is not None
        proc.stdin.write("会议纪要".encode())
        proc.stdin.close()
        assert wait_until(lambda: platform.clipboard_owner_app() == "xclip")
    finally:
        proc.kill()
        proc.wait()
    assert wait_until(lambda: platform.clipboard_owner_app() is None)


def test_without_display_the_reason_is_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    p = LinuxPlatform()
    with pytest.raises(PlatformUnavailable, match="DISPLAY is not set"):
        p.idle_seconds()
    assert p.clipboard_owner_app() is None
    with pytest.raises(PlatformUnavailable, match="cannot open X display"):
        LinuxPlatform(display=":987").idle_seconds()


def test_no_lock_service_here_means_no_os_lock(platform: LinuxPlatform,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "disabled:")
    monkeypatch.delenv("XDG_SESSION_ID", raising=False)
    assert platform.lock_os() is False
    assert platform.is_os_locked() is None


class Desktop:
    """Scripted desktop commands: which lock command works, what the lock state says."""

    def __init__(self, works: str | None, locked: str = "") -> None:
        self.works = works
        self.locked = locked
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        if argv[:2] == ["loginctl", "show-session"]:
            return CommandResult(0 if self.locked else 1, self.locked)
        if "GetActive" in " ".join(argv):
            return CommandResult(0, "(true,)") if self.works and "ScreenSaver" in self.works \
                else CommandResult(1, "")
        joined = " ".join(argv)
        return CommandResult(0 if self.works and self.works in joined else 1, "")


@pytest.mark.parametrize("works", ["loginctl lock-session", "org.freedesktop.ScreenSaver.Lock",
                                   "org.gnome.ScreenSaver.Lock", "xdg-screensaver lock"])
def test_lock_tries_each_way_in_order(works: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_SESSION_ID", raising=False)
    desktop = Desktop(works)
    p = LinuxPlatform(display=":0", runner=desktop)
    assert p.lock_os()
    tried = [" ".join(c) for c in desktop.calls]
    assert works in tried[-1]
    order = ["loginctl", "org.freedesktop.ScreenSaver", "org.gnome.ScreenSaver", "xdg-screensaver"]
    assert len(tried) == next(i for i, o in enumerate(order) if o in works) + 1


def test_lock_state_from_logind_locked_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_SESSION_ID", "c7")
    desktop = Desktop("loginctl lock-session", locked="yes\n")
    p = LinuxPlatform(display=":0", runner=desktop)
    assert p.lock_os() and desktop.calls[0] == ["loginctl", "lock-session", "c7"]
    assert p.is_os_locked() is True
    desktop.locked = "no\n"
    assert p.is_os_locked() is False


def test_a_missing_command_is_a_failure_not_a_crash() -> None:
    from guard.platforms._linux import run_command

    assert run_command(["teller-guard-no-such-command"]).returncode == 127
    assert run_command(["sh", "-c", "exit 3"]).returncode == 3


@pytest.mark.parametrize(("env", "want"), [
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"), ({"LC_ALL": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}, "en_GB"),
    ({"LANG": "C.UTF-8"}, "en_US"), ({}, "en_US"), ({"LC_MESSAGES": "zh_TW@x"}, "zh_TW")])
def test_locale(env: dict[str, str], want: str) -> None:
    assert _locale_from_env(env) == want  # type: ignore[arg-type]
