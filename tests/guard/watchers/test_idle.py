"""IdleLock: countdown warning, OS lock verified, overlay fallback, unlock with the right credential
only and back-off after wrong tries; every warn, lock and unlock an event."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.credentials import Backoff, NoPasswordChecker, PinStore, TellerCredentials
from guard.model import Action, Channel, Outcome
from guard.platforms import PlatformUnavailable
from guard.platforms._fake import FakePlatform
from guard.watchers.idle import IdleLock
from tests.support.core import Core
from tests.support.fakes import FakeLocker
from tests.support.xserver import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_lock(core: Core, tmp_path: Path, platform: FakePlatform, clock: Clock | None = None,
              idle_clock: Clock | None = None, **kwargs: object,
              ) -> tuple[IdleLock, FakeLocker, TellerCredentials]:
    creds = TellerCredentials(
        teller="t1", pins=PinStore("t1", tmp_path, use_keyring=False),
        os_checker=NoPasswordChecker("test"),
        backoff=Backoff(3, 5.0, 300.0, clock=clock or Clock()))
    locker = FakeLocker()
    running = idle_clock or Clock()
    idle = IdleLock(core.pipeline, platform, locker, creds, verify_s=0.5, clock=running,
                    **kwargs)  # type: ignore[arg-type]
    if idle_clock is None:
        running.now += 100_000  # the agent has run for a long time: the idle clock is the OS's
    return idle, locker, creds


def test_warns_once_with_countdown_then_again_after_activity(core: Core, tmp_path: Path) -> None:
    platform = FakePlatform(idle=10)
    idle, _, _ = make_lock(core, tmp_path, platform)
    idle.tick()
    assert core.prompter.notified == [] and core.sink.events == []
    platform.idle = 250
    idle.tick()
    idle.tick()
    (warn,) = core.prompter.notified
    assert (warn.action, warn.channel, warn.kind, warn.timeout_s) == (
        Action.LOCK, Channel.IDLE, "idle_warn", 50)
    assert core.types() == ["IDLE_WARN"] and core.sink.events[0].outcome == Outcome.NOTIFIED
    platform.idle = 1  # the teller came back
    idle.tick()
    platform.idle = 245
    idle.tick()
    assert len(core.prompter.notified) == 2 and not idle.locked


def test_os_lock_verified_and_unlocked_at_the_os(core: Core, tmp_path: Path) -> None:
    platform = FakePlatform(idle=301)
    running = Clock()
    idle, locker, _ = make_lock(core, tmp_path, platform, idle_clock=running)
    running.now += 100_000
    idle.tick()  # past the lock time but never warned: the warning comes first
    assert not idle.locked and core.types() == ["IDLE_WARN"]
    assert core.prompter.notified[-1].timeout_s == 60  # lock_after_s - warn_after_s
    running.now += 59
    idle.tick()
    assert not idle.locked
    running.now += 1
    core.sink.events.clear()
    idle.tick()
    assert idle.locked and idle.method == "os" and locker.shown == 0
    lock = core.sink.events[-1]
    assert lock.type == "IDLE_LOCK" and lock.outcome == Outcome.LOCKED
    assert lock.detail["method"] == "os" and lock.detail["os_lock"] == "verified"
    assert lock.detail["reason"] == "idle"
    idle.tick()
    assert platform.lock_calls == 1  # not locked twice
    platform.unlock_os()
    idle.tick()
    assert not idle.locked
    assert core.types() == ["IDLE_LOCK", "IDLE_UNLOCK"]
    assert core.sink.events[-1].detail["method"] == "os"


@pytest.mark.parametrize(("works", "verify", "why"), [(False, True, "unavailable"),
                                                      (True, False, "unverified")])
def test_overlay_when_os_lock_fails_or_cannot_be_verified(
        core: Core, tmp_path: Path, works: bool, verify: bool, why: str) -> None:
    platform = FakePlatform(idle=0, lock_works=works, can_verify=verify)
    idle, locker, _ = make_lock(core, tmp_path, platform)
    assert idle.lock("manual") == "overlay"
    assert locker.visible and idle.locked
    event = core.sink.events[-1]
    assert event.detail["method"] == "overlay" and event.detail["os_lock"] == why
    assert event.detail["reason"] == "manual"


def test_overlay_unlocks_with_the_pin_only_and_backs_off(core: Core, tmp_path: Path) -> None:
    clock = Clock()
    platform = FakePlatform(idle=400, lock_works=False)
    idle, locker, creds = make_lock(core, tmp_path, platform, clock)
    assert creds.needs_pin_setup()
    with pytest.raises(ValueError, match="pin_too_short"):
        creds.set_pin("123")
    with pytest.raises(ValueError, match="pin_not_digits"):
        creds.set_pin("abcdef")
    creds.set_pin("246810")
    assert not creds.needs_pin_setup()
    assert idle.unlock("246810").message_key == "not_locked"
    idle.lock("idle", idle_s=400)
    assert idle.method == "overlay" and locker.visible
    results = [idle.unlock(wrong) for wrong in ("000000", "111111")]
    assert [(r.ok, r.retry_after_s, r.message_key) for r in results] == [
        (False, 0.0, "wrong_credential"), (False, 0.0, "wrong_credential")]
    third = idle.unlock("222222")
    assert (third.ok, third.retry_after_s) == (False, 5.0)
    waiting = idle.unlock("246810")  # even the right PIN waits out the back-off
    assert (waiting.ok, waiting.message_key) == (False, "backoff") and locker.visible
    clock.now += 5.0
    fourth = idle.unlock("333333")
    assert fourth.retry_after_s == 10.0  # doubles
    clock.now += 10.0
    ok = idle.unlock("246810")
    assert ok.ok and not locker.visible and not idle.locked
    assert core.types() == ["IDLE_LOCK"] + ["IDLE_UNLOCK_FAILED"] * 4 + ["IDLE_UNLOCK"]
    assert core.sink.events[-1].detail["method"] == "overlay"
    assert creds.backoff.failures == 0
    for e in core.sink.events:
        assert "246810" not in e.to_json()


def test_platform_without_idle_time_is_reported_but_lock_now_works(
        core: Core, tmp_path: Path) -> None:
    class NoIdle(FakePlatform):
        def idle_seconds(self) -> float:
            raise PlatformUnavailable("DISPLAY is not set")

    idle, locker, _ = make_lock(core, tmp_path, NoIdle(lock_works=False))
    idle.tick()
    assert idle.state == "unavailable: DISPLAY is not set"
    assert idle.lock("hotkey") == "overlay" and locker.visible


def test_the_worker_thread_locks_an_idle_pc(core: Core, tmp_path: Path) -> None:
    platform = FakePlatform(idle=1000, lock_works=False)
    running = Clock()
    idle, locker, _ = make_lock(core, tmp_path, platform, idle_clock=running)
    idle._poll_s = 0.05
    idle.start()
    try:
        running.now += 1000
        assert wait_until(lambda: core.prompter.notified)  # the warning first
        running.now += 60
        assert wait_until(lambda: locker.visible)
        assert idle.state == "running"
    finally:
        idle.stop()


def test_no_pin_and_no_os_check_says_so(core: Core, tmp_path: Path) -> None:
    idle, locker, _ = make_lock(core, tmp_path, FakePlatform(lock_works=False))
    idle.lock("manual")
    result = idle.unlock("123456")
    assert (result.ok, result.message_key) == (False, "no_pin") and locker.visible
