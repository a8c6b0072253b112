"""The agent's process-level pieces: one instance per session, and a second start's hello."""

from __future__ import annotations

import os

import pytest
from pytestqt.qtbot import QtBot

from ui.app import SingleInstance, parse_args, session_key


def test_session_key_names_the_user_and_the_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":7.0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    key = session_key()
    assert key.startswith("teller-guard-agent-") and key.endswith("_7_0")
    monkeypatch.setenv("DISPLAY", ":8")
    assert session_key() != key


def test_second_instance_is_refused_and_says_hello(qtbot: QtBot, qapp) -> None:
    key = f"teller-guard-agent-test-{os.getpid()}"
    first = SingleInstance(key)
    assert first.acquire()
    try:
        second = SingleInstance(key)
        assert not second.acquire()
        with qtbot.waitSignal(first.second_start, timeout=5000):
            assert second.tell_running_agent()
    finally:
        first.release()
    third = SingleInstance(key)
    assert third.acquire()  # free again once the first let go
    third.release()


def test_arguments() -> None:
    args = parse_args(["--policy", "p.toml", "--no-hotkey"])
    assert args.policy == "p.toml" and args.no_hotkey and args.data_dir is None
