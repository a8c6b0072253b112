"""The prompts, driven through the real pipeline: click the real buttons (or press the keys), then
check the teller's decision, the enforcement it caused and the event that was recorded."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from guard.model import Action, Channel, Device, Finding, Observation, Outcome
from guard.pipeline.pipeline import Enforcement, Handled, MemorySink, Pipeline
from guard.pipeline.prompt import PromptRequest
from guard.policy.store import PolicyStore
from ui.mainthread import MainThread
from ui.prompt import ConfirmDialog, JustifyDialog, PromptDialog, PromptError, QtPrompter

CARD = Finding(type="BANK_CARD", start=0, end=19, score=0.97, masked="622202******0128",
               hash="a" * 16)
MOBILE = Finding(type="CN_MOBILE", start=30, end=41, score=0.9, masked="138****5678",
                 hash="b" * 16)


@dataclass
class Enforced:
    calls: list[str] = field(default_factory=list)

    def enforcement(self) -> Enforcement:
        return Enforcement(allow=lambda: self._note("allow"), block=lambda: self._note("block"),
                           redact=lambda _f: self._note("redact"))

    def _note(self, what: str) -> bool:
        self.calls.append(what)
        return True


@dataclass
class Harness:
    pipeline: Pipeline
    prompter: QtPrompter
    sink: MemorySink
    pool: ThreadPoolExecutor
    enforced: Enforced

    def handle(self, observation: Observation, findings: tuple[Finding, ...] = (CARD,)
               ) -> Future[Handled]:
        """Run the observation through the pipeline on a worker thread, as the agent does."""
        return self.pool.submit(self.pipeline.handle, observation, self.enforced.enforcement(),
                                findings=list(findings))

    def dialog(self, qtbot: QtBot) -> PromptDialog:
        qtbot.waitUntil(lambda: len(self.prompter.open_dialogs()) == 1, timeout=5000)
        dialog = self.prompter.open_dialogs()[0]
        qtbot.waitUntil(dialog.isVisible, timeout=5000)
        return dialog

    def result(self, qtbot: QtBot, fut: Future[Handled]) -> Handled:
        qtbot.waitUntil(fut.done, timeout=10000)
        return fut.result()


@pytest.fixture
def harness(main_thread: MainThread, tmp_path) -> Iterator[Harness]:
    store = PolicyStore(use_machine=False, cache_dir=tmp_path)
    prompter = QtPrompter(main_thread)
    sink = MemorySink()
    pipeline = Pipeline(scanner=None, policy=store.current, prompter=prompter, sink=sink,
                        device=Device(id="dev-1", hostname="teller-pc"), teller="zhang.san")
    pool = ThreadPoolExecutor(max_workers=2)
    yield Harness(pipeline, prompter, sink, pool, Enforced())
    prompter.close_all()
    pool.shutdown(wait=True)


def print_job() -> Observation:
    return Observation(channel=Channel.PRINT, kind="job_held", meta={"printer": "Counter-HP"})


def usb_mounted() -> Observation:
    return Observation(channel=Channel.USB, kind="volume_mounted", meta={"volume": "KINGSTON"})


# --- confirm -------------------------------------------------------------------------------------

def test_confirm_button_acknowledges_and_allows(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(print_job())
    dialog = harness.dialog(qtbot)
    assert isinstance(dialog, ConfirmDialog)
    assert dialog.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert dialog.isModal()
    assert "622202******0128" in dialog.findings.text()
    assert "Counter-HP" in dialog.findings.text()
    qtbot.mouseClick(dialog.proceed_button, Qt.MouseButton.LeftButton)
    handled = harness.result(qtbot, fut)
    assert handled.decision.action is Action.CONFIRM
    assert handled.outcome is Outcome.ACKNOWLEDGED
    assert harness.enforced.calls == ["allow"]
    (event,) = harness.sink.events
    assert event.type == "PRINT_JOB_HELD"
    assert event.outcome is Outcome.ACKNOWLEDGED
    assert event.findings[0].masked == ["622202******0128"]


def test_cancel_button_cancels_and_blocks(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(print_job())
    dialog = harness.dialog(qtbot)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.CANCELLED
    assert harness.enforced.calls == ["block"]
    assert [e.outcome for e in harness.sink.events] == [Outcome.CANCELLED]


@pytest.mark.parametrize("key", [Qt.Key.Key_Escape, Qt.Key.Key_Return])
def test_confirm_keyboard_escape_and_enter_take_the_safe_choice(
        qtbot: QtBot, harness: Harness, key: Qt.Key) -> None:
    fut = harness.handle(print_job())
    dialog = harness.dialog(qtbot)
    assert dialog.cancel_button.isDefault()
    qtbot.keyClick(dialog, key)
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.CANCELLED
    assert harness.sink.events[0].outcome is Outcome.CANCELLED


def test_confirm_by_keyboard_tab_then_space(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(print_job())
    dialog = harness.dialog(qtbot)
    dialog.activateWindow()
    qtbot.waitUntil(lambda: dialog.cancel_button.hasFocus(), timeout=5000)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
    assert dialog.proceed_button.hasFocus()
    qtbot.keyClick(dialog.proceed_button, Qt.Key.Key_Space)
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.ACKNOWLEDGED
    assert harness.sink.events[0].outcome is Outcome.ACKNOWLEDGED


def test_confirm_mnemonic_alt_o(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(print_job())
    dialog = harness.dialog(qtbot)
    dialog.activateWindow()
    qtbot.waitUntil(lambda: dialog.cancel_button.hasFocus(), timeout=5000)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_O, Qt.KeyboardModifier.AltModifier)
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.ACKNOWLEDGED


def test_countdown_takes_the_safe_choice(qtbot: QtBot, harness: Harness, tmp_path) -> None:
    store = PolicyStore(use_machine=False, cache_dir=tmp_path)
    policy_file = tmp_path / "short.toml"
    policy_file.write_text("[prompts]\ntimeout_s = 1\n", encoding="utf-8")
    short = PolicyStore(override_file=policy_file, cache_dir=tmp_path)
    short.reload()
    assert short.current().prompts.timeout_s == 1 != store.current().prompts.timeout_s
    harness.pipeline._policy = short.current
    fut = harness.handle(print_job())
    dialog = harness.dialog(qtbot)
    assert "1 s" in dialog.countdown.text()
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.TIMED_OUT
    assert handled.answer is not None and handled.answer.timed_out
    assert harness.enforced.calls == ["block"]
    assert harness.sink.events[0].outcome is Outcome.TIMED_OUT


# --- justify -------------------------------------------------------------------------------------

def test_justify_pick_a_policy_reason(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(usb_mounted(), findings=())
    dialog = harness.dialog(qtbot)
    assert isinstance(dialog, JustifyDialog)
    assert [b.text() for b in dialog.reason_buttons] == ["业务办理需要", "客户本人要求", "内部审核"]
    assert not dialog.proceed_button.isEnabled()
    second = dialog.reason_buttons[1]
    qtbot.mouseClick(second, Qt.MouseButton.LeftButton, pos=QPoint(8, second.height() // 2))
    assert dialog.proceed_button.isEnabled()
    qtbot.mouseClick(dialog.proceed_button, Qt.MouseButton.LeftButton)
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.JUSTIFIED
    assert harness.enforced.calls == ["allow"]
    (event,) = harness.sink.events
    assert event.type == "USB_VOLUME_MOUNTED"
    assert event.justification == "客户本人要求"


def test_justify_reason_by_keyboard_space_then_enter(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(usb_mounted(), findings=())
    dialog = harness.dialog(qtbot)
    assert isinstance(dialog, JustifyDialog)
    dialog.activateWindow()
    first = dialog.reason_buttons[0]
    qtbot.waitUntil(first.hasFocus, timeout=5000)
    qtbot.keyClick(first, Qt.Key.Key_Space)
    assert first.isChecked()
    qtbot.keyClick(first, Qt.Key.Key_Return)  # Enter presses the default button: continue
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.JUSTIFIED
    assert harness.sink.events[0].justification == "业务办理需要"


def test_justify_typed_reason_needs_the_minimum_length(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(usb_mounted(), findings=())
    dialog = harness.dialog(qtbot)
    assert isinstance(dialog, JustifyDialog)
    assert dialog.min_len == 4
    qtbot.keyClicks(dialog.reason_edit, "abc")
    assert dialog.other_button.isChecked()
    assert not dialog.proceed_button.isEnabled()
    assert "3" in dialog.hint.text()
    qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)  # refused while too short
    assert dialog.isVisible() and not fut.done()
    qtbot.keyClicks(dialog.reason_edit, "d ")
    for char in "对账":  # QTest.keyClicks knows ASCII only: send the typed characters as text
        QTest.sendKeyEvent(QTest.KeyAction.Click, dialog.reason_edit, Qt.Key.Key_unknown, char,
                           Qt.KeyboardModifier.NoModifier)
    assert dialog.proceed_button.isEnabled()
    qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Return)
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.JUSTIFIED
    assert harness.sink.events[0].justification == "abcd 对账"


def test_justify_cancel(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(usb_mounted(), findings=())
    dialog = harness.dialog(qtbot)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.CANCELLED
    assert harness.enforced.calls == ["block"]
    assert harness.sink.events[0].justification == ""


def test_justify_escape_cancels(qtbot: QtBot, harness: Harness) -> None:
    fut = harness.handle(usb_mounted(), findings=())
    dialog = harness.dialog(qtbot)
    assert isinstance(dialog, JustifyDialog)
    qtbot.keyClicks(dialog.reason_edit, "customer request")
    qtbot.keyClick(dialog.reason_edit, Qt.Key.Key_Escape)
    handled = harness.result(qtbot, fut)
    assert handled.outcome is Outcome.CANCELLED


# --- notify --------------------------------------------------------------------------------------

def test_notify_shows_a_toast_and_records(qtbot: QtBot, harness: Harness) -> None:
    copy = Observation(channel=Channel.CLIPBOARD, kind="copy", source_app="notepad")
    handled = harness.handle(copy, findings=(CARD, MOBILE)).result(timeout=10)
    assert handled.outcome is Outcome.NOTIFIED
    qtbot.waitUntil(lambda: harness.prompter.toast() is not None, timeout=5000)
    toast = harness.prompter.toast()
    assert toast is not None
    qtbot.waitUntil(toast.isVisible, timeout=5000)
    assert toast.title.text() == "You copied customer data."
    assert "622202******0128" in toast.body.text() and "138****5678" in toast.body.text()
    assert toast.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
    (event,) = harness.sink.events
    assert event.type == "CLIPBOARD_COPY" and event.outcome is Outcome.NOTIFIED
    assert event.source_app == "notepad"
    qtbot.mouseClick(toast, Qt.MouseButton.LeftButton)
    assert not toast.isVisible()


def test_idle_warning_toast_counts_down(qtbot: QtBot, harness: Harness) -> None:
    harness.prompter.notify(PromptRequest(action=Action.NOTIFY, channel=Channel.IDLE,
                                          kind="idle_warn", timeout_s=60))
    qtbot.waitUntil(lambda: harness.prompter.toast() is not None, timeout=5000)
    toast = harness.prompter.toast()
    assert toast is not None
    assert "60 s" in toast.countdown.text()
    qtbot.waitUntil(lambda: "59 s" in toast.countdown.text(), timeout=3000)


def test_ask_on_the_qt_thread_is_refused(harness: Harness) -> None:
    with pytest.raises(PromptError):
        harness.prompter.ask(PromptRequest(action=Action.CONFIRM, channel=Channel.PRINT,
                                           kind="job_held"))


# --- Chinese ------------------------------------------------------------------------------------

def test_dialogs_in_chinese(qtbot: QtBot, harness: Harness, zh_cn: None) -> None:
    fut = harness.handle(print_job())
    dialog = harness.dialog(qtbot)
    assert dialog.windowTitle() == "柜面隐私卫士"
    assert dialog.proceed_button.text() == "确认(&O)"
    assert dialog.cancel_button.text() == "取消(&C)"
    assert dialog.headline.text() == "此打印任务包含客户信息。"
    assert "银行卡号 × 1：622202******0128" in dialog.findings.text()
    assert "打印机：Counter-HP" in dialog.findings.text()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert harness.result(qtbot, fut).outcome is Outcome.CANCELLED
    fut = harness.handle(usb_mounted(), findings=())
    dialog = harness.dialog(qtbot)
    assert dialog.proceed_button.text() == "继续(&O)"
    assert isinstance(dialog, JustifyDialog)
    assert dialog.other_button.text() == "其他原因(&T)："
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert harness.result(qtbot, fut).outcome is Outcome.CANCELLED
