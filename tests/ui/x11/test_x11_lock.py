"""The lock overlay under a real X server: a real key press (Ctrl+Alt+L through pynput/RECORD)
locks; the overlay holds the keyboard and pointer grabs, ignores Escape, Alt+Tab, Alt+F4 and
clicks on another application's window (xev), and only the teller's PIN unlocks it."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import LOCK_WINDOW, PIN, AgentProcess, XServer, start_agent, unlock_with, wait_until

from tests.support.servers import CollectorProcess

X_SUCCESS, X_ALREADY_GRABBED = 0, 1


class OtherApp:
    """xev: another application's window that prints every event it receives."""

    def __init__(self, xs: XServer) -> None:
        self.proc = subprocess.Popen(
            ["xev", "-geometry", "400x300+100+100", "-name", "other-app", "-event", "keyboard",
             "-event", "button"], env=xs.env, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: xs.visible_windows("other-app"), timeout=10, what="xev's window")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def count(self, kind: str) -> int:
        return sum(1 for line in list(self.lines) if line.startswith(kind))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def other_app(xs: XServer) -> Iterator[OtherApp]:
    app = OtherApp(xs)
    yield app
    app.close()


@pytest.fixture
def lock_agent(xs: XServer, collector: CollectorProcess, policy_file: Path,
               tmp_path: Path) -> Iterator[AgentProcess]:
    agent = start_agent(xs, collector, tmp_path / "agent", policy_file)
    yield agent
    assert agent.stop() == 0, agent.output()


def test_overlay_resists_and_unlocks_with_the_pin_only(xs: XServer, lock_agent: AgentProcess,
                                                       other_app: OtherApp) -> None:
    agent = lock_agent
    # Before the lock the other application gets clicks and keys (so the checks below can fail).
    xs.xdotool("mousemove", "300", "250")
    xs.xdotool("click", "1")
    xs.key("x")
    wait_until(lambda: other_app.count("ButtonPress") and other_app.count("KeyPress"),
               timeout=10, what="xev to see a click and a key before the lock")
    assert xs.grab_status() == (X_SUCCESS, X_SUCCESS)

    # A real key press reaches the agent: the lock-now hotkey.
    xs.key("ctrl+alt+l")
    lock = agent.wait_event("IDLE_LOCK")
    assert lock.detail["reason"] == "hotkey" and lock.detail["method"] == "overlay"
    wait_until(lambda: xs.visible_windows(LOCK_WINDOW), timeout=10, what="the overlay")
    wait_until(lambda: xs.grab_status() == (X_ALREADY_GRABBED, X_ALREADY_GRABBED), timeout=10,
               what="the overlay's keyboard and pointer grabs")

    clicks, keys = other_app.count("ButtonPress"), other_app.count("KeyPress")
    xs.key("Escape")
    xs.key("alt+Tab")
    xs.key("alt+F4")
    xs.xdotool("mousemove", "300", "250")
    xs.xdotool("click", "1")
    xs.key("super")
    time.sleep(0.5)  # give anything that could go wrong the time to do so
    assert xs.visible_windows(LOCK_WINDOW), "the overlay went away"
    assert agent.alive
    assert other_app.count("ButtonPress") == clicks, "a click reached the other window"
    assert other_app.count("KeyPress") == keys, "a key reached the other window"
    assert xs.grab_status() == (X_ALREADY_GRABBED, X_ALREADY_GRABBED)
    assert not agent.events("IDLE_UNLOCK")

    # A wrong PIN is refused and the overlay stays.
    xs.type("000000")
    xs.key("Return")
    failed = agent.wait_event("IDLE_UNLOCK_FAILED")
    assert float(str(failed.detail["retry_after_s"])) > 0
    assert xs.visible_windows(LOCK_WINDOW)
    assert not agent.events("IDLE_UNLOCK")

    # The right PIN unlocks; grabs are released and the other window gets clicks again.
    unlock = unlock_with(xs, agent, PIN)
    assert unlock.detail["method"] == "overlay"
    wait_until(lambda: not xs.visible_windows(LOCK_WINDOW), timeout=10, what="overlay gone")
    wait_until(lambda: xs.grab_status() == (X_SUCCESS, X_SUCCESS), timeout=10,
               what="grabs released")
    xs.xdotool("mousemove", "300", "250")
    xs.xdotool("click", "1")
    wait_until(lambda: other_app.count("ButtonPress") > clicks, timeout=10,
               what="the other window to get clicks again")
    assert PIN not in agent.output()


def test_first_run_pin_setup_by_keyboard(xs: XServer, collector: CollectorProcess,
                                         policy_file: Path, tmp_path: Path) -> None:
    agent = start_agent(xs, collector, tmp_path / "fresh", policy_file, pin=None)
    try:
        title = "柜面隐私卫士：设置解锁 PIN 码"
        windows = wait_until(lambda: xs.visible_windows(title), timeout=15,
                             what="the PIN setup dialog")
        assert isinstance(windows, list)
        xs.xdotool("windowfocus", "--sync", windows[0])
        xs.type("24680")  # too short: the agent refuses, the dialog says so and stays
        xs.key("Tab")
        xs.type("24680")
        xs.key("Return")
        time.sleep(0.5)
        assert xs.visible_windows(title) and not agent.events("PIN_SET")
        xs.type(PIN)
        xs.key("Tab")
        xs.type(PIN)
        xs.key("Return")
        agent.wait_event("PIN_SET")
        wait_until(lambda: not xs.visible_windows(title), timeout=10, what="the dialog closed")
        # The new PIN unlocks the overlay.
        xs.key("ctrl+alt+l")
        agent.wait_event("IDLE_LOCK")
        wait_until(lambda: xs.visible_windows(LOCK_WINDOW), timeout=10, what="the overlay")
        unlock_with(xs, agent, PIN)
    finally:
        assert agent.stop() == 0
