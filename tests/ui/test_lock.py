"""The lock overlay, the first-run PIN dialog and the tray, wired to a real core Agent (fake
platform: no OS lock here, so the overlay is what locks; events go to an in-memory sink)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from guard.app.session import Agent
from guard.credentials import hash_secret
from guard.model import Outcome
from guard.pipeline.pipeline import MemorySink
from guard.platforms._fake import FakePlatform
from ui.lock import LockOverlay, PinSetupDialog
from ui.mainthread import MainThread
from ui.prompt import QtPrompter
from ui.qtclipboard import QtClipboard
from ui.tray import QuitDialog, Tray

PIN = "246813"
IT_SECRET = "it-desk-2026"


@dataclass
class Wired:
    agent: Agent
    overlay: LockOverlay
    sink: MemorySink

    def types(self) -> list[str]:
        return [e.type for e in self.sink.events]


@pytest.fixture
def wired(main_thread: MainThread, tmp_path: Path) -> Iterator[Wired]:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f'version = "test-lock"\n[agent]\nit_credential_hash = "{hash_secret(IT_SECRET)}"\n'
        '[idle]\nunlock = "pin"\nbackoff_after = 1\nbackoff_base_s = 1\nbackoff_max_s = 2\n',
        encoding="utf-8")
    sink = MemorySink()
    overlay = LockOverlay(main_thread)
    agent = Agent.create(prompter=QtPrompter(main_thread), clipboard=QtClipboard(main_thread),
                         locker=overlay, policy_file=str(policy), data_dir=tmp_path / "data",
                         sink=sink, platform=FakePlatform(lock_works=False))
    overlay.set_unlocker(agent.unlock, agent.unlock_methods, agent.supervisors)
    yield Wired(agent, overlay, sink)
    overlay._hide()
    agent.stop()


def type_and_enter(qtbot: QtBot, wired: Wired, text: str) -> None:
    panel = wired.overlay.panel()
    assert panel is not None and panel.edit is not None
    edit = panel.edit
    qtbot.waitUntil(edit.isEnabled, timeout=10000)
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def test_overlay_locks_resists_and_unlocks_with_the_pin_only(qtbot: QtBot, wired: Wired) -> None:
    wired.agent.set_pin(PIN)
    wired.agent.lock_now("test")
    qtbot.waitUntil(wired.overlay.is_shown, timeout=5000)
    panel = wired.overlay.panel()
    assert panel is not None and panel.edit is not None and panel.message is not None
    assert len(wired.overlay._screens) == len(QGuiApplication.screens())
    assert panel.isVisible() and panel.isFullScreen()
    assert panel.geometry() == QGuiApplication.primaryScreen().geometry()
    assert panel.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert panel.windowFlags() & Qt.WindowType.FramelessWindowHint
    assert wired.agent.status().locked

    # Escape, Alt+F4 and a close request change nothing.
    qtbot.keyClick(panel.edit, Qt.Key.Key_Escape)
    qtbot.keyClick(panel, Qt.Key.Key_F4, Qt.KeyboardModifier.AltModifier)
    panel.close()
    assert panel.isVisible() and wired.overlay.is_shown()

    # A wrong PIN: refused, the back-off is shown and input waits for it.
    type_and_enter(qtbot, wired, "000000")
    qtbot.waitUntil(lambda: wired.overlay.last_result is not None, timeout=10000)
    result = wired.overlay.last_result
    assert result is not None and not result.ok and result.message_key == "wrong_credential"
    assert result.retry_after_s > 0
    assert "Wrong password or PIN." in panel.message.text()
    assert "Try again in" in panel.message.text()
    assert not panel.edit.isEnabled()
    assert wired.overlay.is_shown()
    assert "IDLE_UNLOCK_FAILED" in wired.types()

    # The right PIN after the wait unlocks (a try still inside the back-off is refused as such).
    for _ in range(3):
        wired.overlay.last_result = None
        type_and_enter(qtbot, wired, PIN)
        qtbot.waitUntil(lambda: wired.overlay.last_result is not None, timeout=10000)
        last = wired.overlay.last_result
        assert last is not None and last.message_key in ("ok", "backoff")
        if last.ok:
            break
    qtbot.waitUntil(lambda: not wired.overlay.is_shown(), timeout=10000)
    # the overlay goes first, then the unlock is recorded (on the checking thread)
    qtbot.waitUntil(lambda: "IDLE_UNLOCK" in wired.types(), timeout=5000)
    assert not wired.agent.status().locked
    lock = next(e for e in wired.sink.events if e.type == "IDLE_LOCK")
    assert lock.outcome is Outcome.LOCKED and lock.detail["method"] == "overlay"
    unlock = next(e for e in wired.sink.events if e.type == "IDLE_UNLOCK")
    assert unlock.outcome is Outcome.UNLOCKED
    assert PIN not in "".join(e.to_json() for e in wired.sink.events)


def test_overlay_in_chinese(qtbot: QtBot, wired: Wired, zh_cn: None) -> None:
    wired.agent.set_pin(PIN)
    wired.agent.lock_now("test")
    qtbot.waitUntil(wired.overlay.is_shown, timeout=5000)
    panel = wired.overlay.panel()
    assert panel is not None and panel.button is not None and panel.edit is not None
    assert panel.button.text() == "解锁(&U)"
    assert panel.edit.placeholderText() == "密码或 PIN 码"
    type_and_enter(qtbot, wired, PIN)
    qtbot.waitUntil(lambda: not wired.overlay.is_shown(), timeout=10000)


def test_pin_setup_dialog(qtbot: QtBot, wired: Wired) -> None:
    assert wired.agent.needs_pin_setup()
    dialog = PinSetupDialog(wired.agent.set_pin)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.save_button.isEnabled()
    qtbot.keyClicks(dialog.pin, "12a3")  # the validator keeps digits only
    assert dialog.pin.text() == "123"
    qtbot.keyClicks(dialog.repeat, "124")
    assert not dialog.save_button.isEnabled()
    assert dialog.message.text() == "The two PINs differ."
    dialog.repeat.clear()
    qtbot.keyClicks(dialog.repeat, "123")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.message.text() == "The PIN is too short."  # the agent's rule, worded here
    assert not dialog.saved and wired.agent.needs_pin_setup()
    qtbot.keyClicks(dialog.pin, PIN)
    qtbot.keyClicks(dialog.repeat, PIN)
    qtbot.keyClick(dialog.repeat, Qt.Key.Key_Return)
    assert dialog.saved and not dialog.isVisible()
    assert not wired.agent.needs_pin_setup()
    assert "PIN_SET" in wired.types()


def test_pin_setup_later_by_escape(qtbot: QtBot, wired: Wired) -> None:
    dialog = PinSetupDialog(wired.agent.set_pin)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClick(dialog.pin, Qt.Key.Key_Escape)
    assert not dialog.isVisible() and not dialog.saved
    assert wired.agent.needs_pin_setup()


def test_tray_menu_lock_now_and_status(qtbot: QtBot, wired: Wired) -> None:
    wired.agent.set_pin(PIN)
    tray = Tray(wired.agent.verify_it_credential)
    tray.lock_requested.connect(lambda: wired.agent.lock_now("menu"))
    tray.set_status(wired.agent.status())
    texts = tray.status_texts()
    state = {"protected": "Protected", "degraded": "Degraded: some protection is not working",
             "alert": "Alert"}[wired.agent.status().state]
    assert texts[0] == f"Status: {state}"
    assert any(t.startswith("Clipboard guard: ") for t in texts)
    assert "Policy version: test-lock" in texts
    actions = [a.text() for a in tray.menu.actions() if a.text()]
    assert "&Lock now" in actions and "&About Teller Guard" in actions
    assert not any("pause" in a.lower() or "disable" in a.lower() for a in actions)
    tray.lock_action.trigger()
    qtbot.waitUntil(wired.overlay.is_shown, timeout=5000)
    assert next(e for e in wired.sink.events if e.type == "IDLE_LOCK").detail["reason"] == "menu"


def test_tray_quit_needs_the_it_credential(qtbot: QtBot, wired: Wired) -> None:
    tray = Tray(wired.agent.verify_it_credential)
    quits: list[bool] = []
    tray.quit_confirmed.connect(lambda: quits.append(True))
    tray.quit_action.trigger()
    dialog = tray.quit_dialog
    assert isinstance(dialog, QuitDialog)
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    assert dialog.cancel_button.isDefault()
    qtbot.keyClicks(dialog.secret, "guess")
    qtbot.mouseClick(dialog.quit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text() == "That is not the IT credential.",
                    timeout=5000)
    assert dialog.isVisible() and quits == [] and not dialog.checking
    assert not dialog.secret.isReadOnly() and dialog.secret.text() == ""
    qtbot.keyClicks(dialog.secret, IT_SECRET)
    qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: quits == [True], timeout=5000)
    checks = [e.outcome for e in wired.sink.events if e.type == "IT_CREDENTIAL_CHECK"]
    assert checks == [Outcome.FAILED, Outcome.ALLOWED]
    assert IT_SECRET not in "".join(e.to_json() for e in wired.sink.events)


def test_tray_quit_cancel_keeps_running(qtbot: QtBot, wired: Wired) -> None:
    tray = Tray(wired.agent.verify_it_credential)
    quits: list[bool] = []
    tray.quit_confirmed.connect(lambda: quits.append(True))
    tray.ask_quit()
    dialog = tray.quit_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    qtbot.keyClick(dialog.secret, Qt.Key.Key_Escape)
    assert not dialog.isVisible() and quits == []


def test_tray_states_and_chinese_menu(qtbot: QtBot, wired: Wired, zh_cn: None) -> None:
    from guard.app.session import AgentStatus

    tray = Tray(wired.agent.verify_it_credential)
    tray.set_status(AgentStatus(state="degraded",
                                watchers={"clipboard": "running",
                                          "idle": "unavailable: no X11 screensaver extension"},
                                last_event="CLIPBOARD_COPY notified", queue_depth=3,
                                policy_version="default-2026.1", collector_reachable=False))
    assert tray.state == "degraded"
    texts = tray.status_texts()
    assert texts[0] == "状态：部分降级：有保护功能未在工作"
    assert "离开锁屏：不可用（no X11 screensaver extension）" in texts
    assert "待上报事件：3" in texts and "事件服务器：无法连接" in texts
    assert "最近事件：复制：已提醒" in texts
    assert tray.lock_action.text() == "立即锁屏(&L)"
    assert tray.about_action.text() == "关于柜面隐私卫士(&A)"
    tray.set_status(AgentStatus(state="alert"))
    assert tray.state == "alert" and tray.status_texts()[0] == "状态：警报"


def test_about_box_in_chinese_closes_with_enter(qtbot: QtBot, wired: Wired, zh_cn: None) -> None:
    tray = Tray(wired.agent.verify_it_credential)
    tray.about_action.trigger()
    box = tray.about_box
    assert box is not None
    qtbot.waitUntil(box.isVisible, timeout=5000)
    assert box.windowTitle() == "关于柜面隐私卫士"
    assert box.text().startswith("柜面隐私卫士 ")
    assert "柜面" in box.informativeText()
    qtbot.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=5000)


def test_overlay_offers_exactly_what_unlocks_and_a_mnemonic_loses_no_key(
        qtbot: QtBot, wired: Wired) -> None:
    wired.agent.set_pin(PIN)
    wired.agent.lock_now("test")
    qtbot.waitUntil(wired.overlay.is_shown, timeout=5000)
    panel = wired.overlay.panel()
    assert panel is not None and panel.edit is not None and panel.hint is not None
    # A PIN and an IT credential here; no supervisor in policy, no way to check codes.
    assert panel.methods == ("teller", "it")
    assert set(panel.method_buttons) == {"teller", "it"}
    assert "the IT credential" in panel.hint.text() and "supervisor" not in panel.hint.text()
    assert panel.method_buttons["it"].text() == "&IT credential"  # Alt+I (tested under X11)
    panel.method_buttons["it"].click()
    assert panel.method() == "it" and panel.edit.placeholderText() == "IT credential"
    type_and_enter(qtbot, wired, IT_SECRET)
    qtbot.waitUntil(lambda: not wired.overlay.is_shown(), timeout=10000)
    # the overlay goes first, then the unlock is recorded (on the checking thread)
    qtbot.waitUntil(lambda: "IDLE_UNLOCK_IT" in wired.types(), timeout=5000)


def test_quit_dialog_says_so_when_enter_gives_a_wrong_it_credential(
        qtbot: QtBot, wired: Wired) -> None:
    tray = Tray(wired.agent.verify_it_credential)
    tray.ask_quit()
    dialog = tray.quit_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    qtbot.keyClicks(dialog.secret, "guess")
    closed: list[int] = []
    dialog.finished.connect(closed.append)
    qtbot.keyClick(dialog.secret, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.message.text() == "That is not the IT credential.",
                    timeout=5000)
    assert dialog.isVisible() and closed == []
