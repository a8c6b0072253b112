"""One contract test class per platform capability (keyring's `BackendBasicTests`): every
backend's test module subclasses them and provides the fixtures each class names."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guard.platforms import (
    ClipboardOwner,
    DataDirBusy,
    DataDirLock,
    HeldLock,
    IdleClock,
    KeyboardHook,
    MachinePaths,
    PasswordCheck,
    PolicyRegistry,
    ProcessTable,
    SessionLock,
    UiLocale,
)
from tests.support.xserver import wait_until

# Fixtures named below are provided by the backend's module: `advance(seconds)` lets idle time
# pass (a real wait or a fake clock), `touch()` makes user input, and so on.


class IdleClockContract:
    """Fixtures: idle_clock, advance(seconds), touch()."""

    def test_is_an_idle_clock(self, idle_clock: IdleClock) -> None:
        assert isinstance(idle_clock, IdleClock)
        assert idle_clock.idle_seconds() >= 0.0

    def test_grows_while_nobody_types(self, idle_clock: IdleClock,
                                      advance: Callable[[float], None]) -> None:
        first = idle_clock.idle_seconds()
        advance(0.4)
        assert idle_clock.idle_seconds() >= first + 0.3

    def test_input_resets_it(self, idle_clock: IdleClock, advance: Callable[[float], None],
                             touch: Callable[[], None]) -> None:
        advance(0.4)
        before = idle_clock.idle_seconds()
        touch()
        assert idle_clock.idle_seconds() < before


class SessionLockContract:
    """Fixtures: session_lock, can_lock (whether this desktop has a lock that works)."""

    def test_is_a_session_lock(self, session_lock: SessionLock) -> None:
        assert isinstance(session_lock, SessionLock)

    def test_lock_answers_and_the_state_agrees(self, session_lock: SessionLock,
                                               can_lock: bool) -> None:
        assert session_lock.is_os_locked() in (True, False, None)
        assert session_lock.lock_os() is can_lock
        state = session_lock.is_os_locked()
        assert state in (True, None) if can_lock else state in (False, None)


class ClipboardOwnerContract:
    """Fixtures: clipboard_owner, own_clipboard() -> (expected app name, give_up())."""

    def test_is_a_clipboard_owner(self, clipboard_owner: ClipboardOwner) -> None:
        assert isinstance(clipboard_owner, ClipboardOwner)

    def test_names_the_owner_then_none(self, clipboard_owner: ClipboardOwner,
                                       own_clipboard: Callable[[], tuple[str, Callable[[], None]]]
                                       ) -> None:
        name, give_up = own_clipboard()
        assert wait_until(lambda: clipboard_owner.clipboard_owner_app() == name)
        give_up()
        assert wait_until(lambda: clipboard_owner.clipboard_owner_app() is None)


class UiLocaleContract:
    """Fixtures: ui_locale, expected_locale."""

    def test_locale_shape(self, ui_locale: UiLocale, expected_locale: str) -> None:
        assert isinstance(ui_locale, UiLocale)
        got = ui_locale.os_locale()
        assert re.fullmatch(r"[a-z]{2,3}_[A-Z]{2}", got), got
        assert got == expected_locale


class PasswordCheckContract:
    """Fixtures: password_check, account -> (user, right password)."""

    def test_is_usable_and_says_so(self, password_check: PasswordCheck) -> None:
        assert isinstance(password_check, PasswordCheck)
        assert password_check.usable is True, password_check.reason

    def test_right_wrong_and_empty(self, password_check: PasswordCheck,
                                   account: tuple[str, str]) -> None:
        user, right = account
        assert password_check.check(user, right) is True
        assert password_check.check(user, right + "x") is False
        assert password_check.check("", right) is False


class KeyboardHookContract:
    """Fixtures: make_hook(on_error) -> KeyboardHook, tap(hook, combo) (press and release the
    keys and return once the hook has seen them)."""

    def _started(self, make_hook: Callable[..., KeyboardHook], on_error: Any = None
                 ) -> KeyboardHook:
        hook = make_hook(on_error)
        assert isinstance(hook, KeyboardHook)
        hook.start()
        return hook

    def test_a_combo_calls_back_on_the_listener_thread(self, make_hook: Callable[..., Any],
                                                       tap: Callable[[Any, str], None]) -> None:
        fired: list[threading.Thread] = []
        hook = self._started(make_hook)
        try:
            hook.register("<ctrl>+<alt>+l", lambda: fired.append(threading.current_thread()))
            tap(hook, "<ctrl>+<alt>+l")
            assert wait_until(lambda: len(fired) == 1)
            assert fired[0] is not threading.current_thread()
            hook.start()  # a second start changes nothing
            tap(hook, "<ctrl>+<alt>+l")
            assert wait_until(lambda: len(fired) == 2)
        finally:
            hook.stop()
        hook.check()

    def test_exactly_the_held_keys(self, make_hook: Callable[..., Any],
                                   tap: Callable[[Any, str], None]) -> None:
        fired: list[str] = []
        hook = self._started(make_hook)
        try:
            for combo in ("<print_screen>", "<alt>+<print_screen>", "<alt>+a"):
                hook.register(combo, lambda c=combo: fired.append(c))  # type: ignore[misc]
            tap(hook, "<alt>+<print_screen>")
            tap(hook, "a")  # a bare letter is no combo
            tap(hook, "<alt>+a")
            tap(hook, "<print_screen>")
            assert wait_until(lambda: len(fired) >= 3)
            assert fired == ["<alt>+<print_screen>", "<alt>+a", "<print_screen>"]
        finally:
            hook.stop()

    def test_a_callback_error_reaches_the_owner(self, make_hook: Callable[..., Any],
                                                tap: Callable[[Any, str], None]) -> None:
        errors: list[BaseException] = []
        hook = self._started(make_hook, errors.append)
        try:
            hook.register("<ctrl>+<alt>+l", lambda: 1 / 0)
            tap(hook, "<ctrl>+<alt>+l")
            assert wait_until(lambda: len(errors) == 1)
            assert isinstance(errors[0], ZeroDivisionError)
            ok: list[int] = []
            hook.register("<alt>+a", lambda: ok.append(1))
            tap(hook, "<alt>+a")  # the hook survived its callback's error
            assert wait_until(lambda: ok == [1])
        finally:
            hook.stop()

    def test_without_a_handler_check_reraises(self, make_hook: Callable[..., Any],
                                              tap: Callable[[Any, str], None]) -> None:
        hook = self._started(make_hook)
        calls: list[int] = []

        def broken() -> None:
            calls.append(1)
            raise KeyError("broken callback")

        try:
            hook.register("<alt>+a", broken)
            tap(hook, "<alt>+a")
            assert wait_until(lambda: calls == [1])
        finally:
            hook.stop()
        raised: list[KeyError] = []

        def check_raises() -> bool:
            try:
                hook.check()
            except KeyError as exc:
                raised.append(exc)
                return True
            return False

        assert wait_until(check_raises)  # kept on the listener thread, re-raised here
        assert "broken callback" in str(raised[0])
        hook.check()  # raised once, then cleared

    def test_a_bad_combo_is_refused(self, make_hook: Callable[..., Any]) -> None:
        hook = make_hook(None)
        with pytest.raises(ValueError, match="neither"):
            hook.register("<ctrl>+ll", lambda: None)
        with pytest.raises(ValueError):
            hook.register("", lambda: None)


class MachinePathsContract:
    """Fixtures: machine_paths."""

    def test_paths(self, machine_paths: MachinePaths) -> None:
        assert isinstance(machine_paths, MachinePaths)
        data = machine_paths.machine_data_dir()
        policy = machine_paths.machine_policy_file()
        run = machine_paths.run_dir()
        assert _absolute(data) and _absolute(policy) and policy.name == "policy.toml"
        assert run is None or _absolute(run)


def _absolute(path: Path) -> bool:
    text = str(path)
    return path.is_absolute() or bool(re.match(r"^[A-Za-z]:\\", text))


class PolicyRegistryContract:
    """Fixtures: registry, registry_values (what the backend was seeded with)."""

    def test_values_by_dotted_key(self, registry: PolicyRegistry,
                                  registry_values: dict[str, Any]) -> None:
        assert isinstance(registry, PolicyRegistry)
        values = registry.policy_values()
        assert values == registry_values
        assert all(isinstance(k, str) for k in values)
        if registry.source is None:
            assert values == {}


class ProcessTableContract:
    """Fixtures: processes, ended_pid (a process that has exited)."""

    def test_own_process_exists_an_ended_one_not(self, processes: ProcessTable,
                                                 ended_pid: int) -> None:
        assert isinstance(processes, ProcessTable)
        assert processes.process_exists(os.getpid())
        assert not processes.process_exists(ended_pid)
        assert not processes.process_exists(0) and not processes.process_exists(-5)


class DataDirLockContract:
    """Fixtures: data_lock, tmp_path."""

    def test_exclusive_until_released(self, data_lock: DataDirLock, tmp_path: Path) -> None:
        assert isinstance(data_lock, DataDirLock)
        held = data_lock.hold(tmp_path)
        assert isinstance(held, HeldLock) and held.path.parent == tmp_path
        with pytest.raises(DataDirBusy, match=re.escape(str(held.path))):
            data_lock.hold(tmp_path)
        held.release()
        held.release()  # idempotent
        again = data_lock.hold(tmp_path)
        again.release()
