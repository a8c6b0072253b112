"""The fake backend keeps every capability contract (what tests of other packages rely on)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from guard.platforms import PlatformUnavailable
from guard.platforms._fake import (
    FakeDataDirLock,
    FakeKeyboardHook,
    FakeMachinePaths,
    FakePasswordCheck,
    FakePlatform,
    FakeProcessTable,
    FakeRegistry,
    fake_session,
)
from tests.guard.platforms import contracts
from tests.support.xserver import wait_until


@pytest.fixture
def desk() -> FakePlatform:
    return FakePlatform(idle=0.0)


@pytest.fixture
def idle_clock(desk: FakePlatform) -> FakePlatform:
    return desk


@pytest.fixture
def advance(desk: FakePlatform) -> Callable[[float], None]:
    def go(seconds: float) -> None:
        desk.idle += seconds
    return go


@pytest.fixture
def touch(desk: FakePlatform) -> Callable[[], None]:
    def go() -> None:
        desk.idle = 0.0
    return go


class TestIdleClock(contracts.IdleClockContract):
    pass


@pytest.fixture(params=[True, False], ids=["lock-works", "no-lock"])
def can_lock(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def session_lock(can_lock: bool) -> FakePlatform:
    return FakePlatform(lock_works=can_lock)


class TestSessionLock(contracts.SessionLockContract):
    pass


@pytest.fixture
def clipboard_owner(desk: FakePlatform) -> FakePlatform:
    return desk


@pytest.fixture
def own_clipboard(desk: FakePlatform) -> Callable[[], tuple[str, Callable[[], None]]]:
    def own() -> tuple[str, Callable[[], None]]:
        desk.owner = "CoreBank.exe"
        return "CoreBank.exe", lambda: setattr(desk, "owner", None)
    return own


class TestClipboardOwner(contracts.ClipboardOwnerContract):
    pass


@pytest.fixture
def ui_locale() -> FakePlatform:
    return FakePlatform(locale="zh_CN")


@pytest.fixture
def expected_locale() -> str:
    return "zh_CN"


class TestUiLocale(contracts.UiLocaleContract):
    pass


@pytest.fixture
def password_check() -> FakePasswordCheck:
    return FakePasswordCheck({"teller1": "Passw0rd!"})


@pytest.fixture
def account() -> tuple[str, str]:
    return "teller1", "Passw0rd!"


class TestPasswordCheck(contracts.PasswordCheckContract):
    pass


@pytest.fixture
def make_hook() -> Callable[..., FakeKeyboardHook]:
    return lambda on_error=None: FakeKeyboardHook(on_error)


@pytest.fixture
def tap() -> Callable[[Any, str], None]:
    def press(hook: FakeKeyboardHook, combo: str) -> None:
        hook.tap(combo)
        assert hook.flush()
    return press


class TestKeyboardHook(contracts.KeyboardHookContract):
    def test_a_dead_listener_reaches_the_owner(self) -> None:
        errors: list[BaseException] = []
        hook = FakeKeyboardHook(errors.append)
        hook.start()
        hook.die("X connection lost")
        assert wait_until(lambda: len(errors) == 1)
        assert isinstance(errors[0], PlatformUnavailable) and "X connection lost" in str(errors[0])
        assert wait_until(lambda: not hook.running)

    def test_a_refusing_hook_says_why(self) -> None:
        with pytest.raises(PlatformUnavailable, match="no RECORD"):
            FakeKeyboardHook(refuse="no RECORD").start()


@pytest.fixture
def machine_paths(tmp_path: Any) -> FakeMachinePaths:
    return FakeMachinePaths(tmp_path)


class TestMachinePaths(contracts.MachinePathsContract):
    pass


@pytest.fixture
def registry_values() -> dict[str, Any]:
    return {"idle.lock_after_s": 600, "clipboard.app_allowlist": ["CoreBank.exe"]}


@pytest.fixture
def registry(registry_values: dict[str, Any]) -> FakeRegistry:
    return FakeRegistry(registry_values)


class TestPolicyRegistry(contracts.PolicyRegistryContract):
    pass


@pytest.fixture
def processes() -> FakeProcessTable:
    return FakeProcessTable()


@pytest.fixture
def ended_pid() -> int:
    return os.getpid() + 100_000


class TestProcessTable(contracts.ProcessTableContract):
    pass


@pytest.fixture
def data_lock() -> FakeDataDirLock:
    return FakeDataDirLock()


class TestDataDirLock(contracts.DataDirLockContract):
    pass


def test_the_fake_session_is_a_platform() -> None:
    from guard.platforms import Platform

    desk = FakePlatform(idle=12.0, owner="x.exe")
    session = fake_session(desk)
    assert isinstance(session, Platform)
    assert (session.idle_seconds(), session.clipboard_owner_app(), session.name) == (
        12.0, "x.exe", "fake")
    assert session.lock_os() and desk.lock_calls == 1 and session.is_os_locked() is True
    assert isinstance(session.keyboard_hook(), FakeKeyboardHook)
