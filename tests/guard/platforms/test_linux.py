"""The Linux backend against a real X server: the capability contracts with Xvfb, xdotool key
presses and xclip; idle time grows while nobody types and xdotool input resets it; the clipboard
owner is the process behind xclip's window; lock commands at their boundary (no logind or
screensaver service runs here); PAM with a test service; flock and /proc for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from guard.platforms import DataDirBusy, PlatformUnavailable
from guard.platforms._linux.keyboard import keyboard_hook
from guard.platforms._linux.machine import (
    FlockDataDirLock,
    LinuxMachinePaths,
    NoRegistry,
    ProcTable,
)
from guard.platforms._linux.password import PamPasswordChecker
from guard.platforms._linux.session import (
    CommandResult,
    LinuxPlatform,
    _locale_from_env,
    run_command,
)
from guard.platforms._pynput_hook import PynputKeyboardHook
from tests.guard.platforms import contracts
from tests.support.xserver import wait_until, x_env, xvfb

x11 = pytest.mark.x11


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


@pytest.fixture
def platform(display: str) -> Iterator[LinuxPlatform]:
    p = LinuxPlatform(display=display)
    yield p
    p.close()


@x11
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


@x11
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


@x11
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
    assert run_command(["teller-guard-no-such-command"]).returncode == 127
    assert run_command(["sh", "-c", "exit 3"]).returncode == 3


@pytest.mark.parametrize(("env", "want"), [
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"), ({"LC_ALL": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}, "en_GB"),
    ({"LANG": "C.UTF-8"}, "en_US"), ({}, "en_US"), ({"LC_MESSAGES": "zh_TW@x"}, "zh_TW")])
def test_locale(env: dict[str, str], want: str) -> None:
    assert _locale_from_env(env) == want  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The capability contracts against the real backend.


def _xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=x_env(display), check=True, timeout=10)


@pytest.fixture
def idle_clock(platform: LinuxPlatform) -> LinuxPlatform:
    return platform


@pytest.fixture
def advance() -> Callable[[float], None]:
    return time.sleep


@pytest.fixture
def touch(display: str) -> Callable[[], None]:
    return lambda: _xdotool(display, "mousemove", "200", "300", "mousemove", "210", "310")


@x11
class TestIdleClock(contracts.IdleClockContract):
    pass


@pytest.fixture
def session_lock(platform: LinuxPlatform, monkeypatch: pytest.MonkeyPatch) -> LinuxPlatform:
    # This machine has no logind session, no screensaver service and no session bus.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "disabled:")
    monkeypatch.delenv("XDG_SESSION_ID", raising=False)
    return platform


@pytest.fixture
def can_lock() -> bool:
    return False


@x11
class TestSessionLock(contracts.SessionLockContract):
    pass


@pytest.fixture
def clipboard_owner(platform: LinuxPlatform) -> LinuxPlatform:
    return platform


@pytest.fixture
def own_clipboard(display: str) -> Iterator[Callable[[], tuple[str, Callable[[], None]]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def own() -> tuple[str, Callable[[], None]]:
        proc = subprocess.Popen(["xclip", "-selection", "clipboard", "-loops", "1"],
                                stdin=subprocess.PIPE, env=x_env(display))
        procs.append(proc)
        assert proc.stdin is not None
        proc.stdin.write("会议纪要".encode())
        proc.stdin.close()

        def give_up() -> None:
            proc.kill()
            proc.wait()
        return "xclip", give_up

    yield own
    for proc in procs:
        proc.kill()
        proc.wait()


@x11
class TestClipboardOwner(contracts.ClipboardOwnerContract):
    pass


@pytest.fixture
def ui_locale(monkeypatch: pytest.MonkeyPatch) -> LinuxPlatform:
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    return LinuxPlatform(display=":0")


@pytest.fixture
def expected_locale() -> str:
    return "zh_CN"


class TestUiLocale(contracts.UiLocaleContract):
    pass


PAM_EXEC = Path("/usr/lib/x86_64-linux-gnu/security/pam_exec.so")


@pytest.fixture
def password_check(tmp_path: Path) -> PamPasswordChecker:
    """Real PAM with a service of the test's own whose auth step accepts one password."""
    if not PAM_EXEC.exists():
        pytest.skip("needs libpam-modules (pam_exec.so) for a test PAM service")
    script = tmp_path / "check.sh"
    script.write_text('#!/bin/sh\nread pw\n[ "$pw" = "right-password" ]\n')
    script.chmod(0o755)
    conf = tmp_path / "pam.d"
    conf.mkdir()
    (conf / "teller-guard-test").write_text(
        f"auth required pam_exec.so expose_authtok quiet {script}\n"
        "account required pam_permit.so\n")
    return PamPasswordChecker("teller-guard-test", confdir=str(conf))


@pytest.fixture
def account() -> tuple[str, str]:
    return "teller1", "right-password"


class TestPasswordCheck(contracts.PasswordCheckContract):
    pass


@pytest.fixture(scope="module")
def key_display() -> Iterator[str]:
    with xvfb(800, 600) as name:
        yield name


@pytest.fixture
def make_hook(key_display: str) -> Iterator[Callable[..., PynputKeyboardHook]]:
    hooks: list[PynputKeyboardHook] = []

    def make(on_error: Any = None) -> PynputKeyboardHook:
        hook = keyboard_hook(on_error, display=key_display)
        hooks.append(hook)
        return hook

    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = key_display  # pynput reads DISPLAY when first imported
    try:
        yield make
    finally:
        for hook in hooks:
            hook.stop()
        # pynput's stop ends at the next input event: give it one.
        subprocess.run(["xdotool", "key", "shift"], env=x_env(key_display), check=False,
                       timeout=10)
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old


_XDOTOOL_KEYS = {"ctrl": "ctrl", "alt": "alt", "shift": "shift", "cmd": "super",
                 "print_screen": "Print"}


@pytest.fixture
def tap(key_display: str) -> Callable[[Any, str], None]:
    def press(hook: Any, combo: str) -> None:
        from guard.platforms.base import parse_combo

        keys = parse_combo(combo)
        mods = [k for k in ("ctrl", "alt", "shift", "cmd") if k in keys]
        rest = [k for k in keys if k not in mods]
        xkeys = "+".join([_XDOTOOL_KEYS[k] for k in mods] + [_XDOTOOL_KEYS.get(k, k)
                                                             for k in rest])
        _xdotool(key_display, "key", xkeys)
        time.sleep(0.05)  # not a timing claim: lets RECORD deliver before the next tap
    return press


@x11
class TestKeyboardHook(contracts.KeyboardHookContract):
    def test_the_hook_says_why_it_cannot_run(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("DISPLAY", raising=False)
        with pytest.raises(PlatformUnavailable, match="make sure DISPLAY is set"):
            keyboard_hook().start()
        with pytest.raises(PlatformUnavailable, match="cannot open X display :987"):
            keyboard_hook(display=":987").start()

    def test_a_dead_x_server_reaches_the_owner(self) -> None:
        """The listener's X connection goes away: the owner hears it, nothing hangs."""
        errors: list[BaseException] = []
        with xvfb(640, 480) as name:
            old = os.environ.get("DISPLAY")
            os.environ["DISPLAY"] = name
            try:
                hook = keyboard_hook(errors.append, display=name)
                hook.start()
            finally:
                if old is None:
                    os.environ.pop("DISPLAY", None)
                else:
                    os.environ["DISPLAY"] = old
        assert wait_until(lambda: len(errors) == 1, timeout=20)
        assert isinstance(errors[0], PlatformUnavailable)
        assert "the key listener stopped" in str(errors[0])
        hook.stop()


@pytest.fixture
def machine_paths() -> LinuxMachinePaths:
    return LinuxMachinePaths()


class TestMachinePaths(contracts.MachinePathsContract):
    def test_the_fhs_places(self, machine_paths: LinuxMachinePaths) -> None:
        assert machine_paths.machine_data_dir() == Path("/var/lib/teller-guard")
        assert machine_paths.run_dir() == Path("/run/teller-guard")
        assert machine_paths.machine_policy_file() == Path("/etc/teller-guard/policy.toml")


@pytest.fixture
def registry() -> NoRegistry:
    return NoRegistry()


@pytest.fixture
def registry_values() -> dict[str, Any]:
    return {}


class TestPolicyRegistry(contracts.PolicyRegistryContract):
    pass


@pytest.fixture
def processes() -> ProcTable:
    return ProcTable()


@pytest.fixture
def ended_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class TestProcessTable(contracts.ProcessTableContract):
    def test_without_proc_the_kernel_answers(self, tmp_path: Path, ended_pid: int) -> None:
        table = ProcTable(proc=tmp_path)  # an empty directory: no /proc/self
        assert table.process_exists(os.getpid()) and table.process_exists(1)
        assert not table.process_exists(ended_pid)


@pytest.fixture
def data_lock() -> FlockDataDirLock:
    return FlockDataDirLock()


class TestDataDirLock(contracts.DataDirLockContract):
    def test_another_process_is_refused(self, data_lock: FlockDataDirLock, tmp_path: Path
                                        ) -> None:
        held = data_lock.hold(tmp_path)
        try:
            code = ("import sys; from pathlib import Path; "
                    "from guard.platforms._linux.machine import FlockDataDirLock; "
                    "from guard.platforms import DataDirBusy\n"
                    "try:\n    FlockDataDirLock().hold(Path(sys.argv[1]))\n"
                    "except DataDirBusy as exc:\n    print('busy', exc); sys.exit(3)\n")
            child = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                                   capture_output=True, text=True, timeout=60, check=False)
            assert child.returncode == 3, child.stderr
            assert child.stdout.startswith("busy another process holds")
        finally:
            held.release()
        child = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                               capture_output=True, text=True, timeout=60, check=False)
        assert child.returncode == 0, child.stdout + child.stderr

    def test_an_unwritable_directory_is_an_os_error(self, data_lock: FlockDataDirLock,
                                                    tmp_path: Path) -> None:
        with pytest.raises(OSError) as info:
            data_lock.hold(tmp_path / "missing")
        assert not isinstance(info.value, DataDirBusy)
