"""Asks the teller with Qt: a toast for `notify`, modal always-on-top confirm and justify dialogs.

`QtPrompter` implements `guard.pipeline.prompt.Prompter`. The core calls it from worker threads;
widgets are created and driven on the Qt thread through the `MainThread` gateway, and `ask()` blocks
the calling worker until the teller answers or the dialog's countdown takes the safe choice
(cancel).
Every dialog works with the keyboard alone: Esc cancels, Enter presses the default button (cancel
for confirm; continue for justify once the reason is long enough), Tab moves in reading order and
each button has a mnemonic.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QFont, QGuiApplication, QMouseEvent, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from guard.events import (
    ClipboardKind,
    FileKind,
    IdleKind,
    PrintKind,
    ScreenKind,
    SystemKind,
    UsbKind,
)
from guard.model import Action, Channel, FindingSummary
from guard.pipeline.approval import CODE, SUPERVISOR, ApprovalRequest, ApprovalResult, Check
from guard.pipeline.prompt import PromptAnswer, PromptRequest
from ui import i18n
from ui.i18n import QT_TRANSLATE_NOOP
from ui.icons import app_icon
from ui.mainthread import MainThread, MainThreadTimeout

log = logging.getLogger(__name__)

TOAST_SECONDS = 8.0
MAX_MASKED_SHOWN = 3

# What happened, by (channel, kind), then by channel alone.
_HEADLINES: dict[tuple[Channel, str], str] = {
    (Channel.CLIPBOARD, ClipboardKind.COPY): QT_TRANSLATE_NOOP(
        "Prompt", "You copied customer data."),
    (Channel.CLIPBOARD, ClipboardKind.REDACTED): QT_TRANSLATE_NOOP(
        "Prompt", "Customer data in the clipboard was replaced by its masked form."),
    (Channel.CLIPBOARD, ClipboardKind.BLOCKED): QT_TRANSLATE_NOOP(
        "Prompt", "The clipboard was emptied: it held customer data."),
    (Channel.CLIPBOARD, ClipboardKind.CLEARED): QT_TRANSLATE_NOOP(
        "Prompt", "The clipboard was emptied to protect customer data."),
    (Channel.CLIPBOARD, ClipboardKind.SKIPPED): QT_TRANSLATE_NOOP(
        "Prompt", "The clipboard content was too large or not text, so it was not checked."),
    (Channel.SCREEN, ScreenKind.HOTKEY): QT_TRANSLATE_NOOP(
        "Prompt", "A screen capture may show customer data."),
    (Channel.SCREEN, ScreenKind.SCREENSHOT_FILE): QT_TRANSLATE_NOOP(
        "Prompt", "A new screenshot contains customer data."),
    (Channel.SCREEN, ScreenKind.REMOTE_CONTROL): QT_TRANSLATE_NOOP(
        "Prompt", "A remote-control or screen-recording program was started."),
    (Channel.FILE, FileKind.RETAINED): QT_TRANSLATE_NOOP(
        "Prompt", "A file on this PC holds customer data: please remove it."),
    (Channel.PRINT, PrintKind.JOB_HELD): QT_TRANSLATE_NOOP(
        "Prompt", "This print job contains customer data."),
    (Channel.USB, UsbKind.VOLUME_MOUNTED): QT_TRANSLATE_NOOP(
        "Prompt", "A removable drive was connected. Copying customer data to it is not "
                  "allowed."),
    (Channel.USB, UsbKind.FILE_WRITTEN): QT_TRANSLATE_NOOP(
        "Prompt", "A file with customer data was written to a removable drive."),
    (Channel.IDLE, IdleKind.WARN): QT_TRANSLATE_NOOP(
        "Prompt", "No activity: the screen will lock soon."),
    (Channel.SYSTEM, SystemKind.ALREADY_RUNNING): QT_TRANSLATE_NOOP(
        "Prompt", "Teller Guard is already running."),
}
_CHANNEL_HEADLINES: dict[Channel, str] = {
    Channel.CLIPBOARD: QT_TRANSLATE_NOOP("Prompt", "The clipboard holds customer data."),
    Channel.SCREEN: QT_TRANSLATE_NOOP("Prompt", "A screen capture may show customer data."),
    Channel.PRINT: QT_TRANSLATE_NOOP("Prompt", "A print job contains customer data."),
    Channel.USB: QT_TRANSLATE_NOOP("Prompt", "Customer data and a removable drive."),
    Channel.IDLE: QT_TRANSLATE_NOOP("Prompt", "No activity: the screen will lock soon."),
}
_DETAIL_LABELS: dict[str, str] = {
    "printer": QT_TRANSLATE_NOOP("Prompt", "Printer"),
    "document": QT_TRANSLATE_NOOP("Prompt", "Document"),
    "pages": QT_TRANSLATE_NOOP("Prompt", "Pages"),
    "volume": QT_TRANSLATE_NOOP("Prompt", "Drive"),
    "file": QT_TRANSLATE_NOOP("Prompt", "File"),
    "app": QT_TRANSLATE_NOOP("Prompt", "Application"),
    "source_app": QT_TRANSLATE_NOOP("Prompt", "Application"),
    "skipped": QT_TRANSLATE_NOOP("Prompt", "Not checked"),
}
_LABELLED = QT_TRANSLATE_NOOP("Prompt", "{label}: {value}")
_DEFAULT_REASONS = (
    QT_TRANSLATE_NOOP("JustifyDialog", "The customer asked for it at the counter"),
    QT_TRANSLATE_NOOP("JustifyDialog", "Required by the business process"),
)


def _tr(text: str) -> str:
    return QCoreApplication.translate("Prompt", text)


def headline(request: PromptRequest) -> str:
    """One sentence saying what happened, in the teller's language."""
    key = (request.channel, request.kind)
    if key in _HEADLINES:
        return _tr(_HEADLINES[key])
    if request.channel in _CHANNEL_HEADLINES:
        return _tr(_CHANNEL_HEADLINES[request.channel])
    return _tr(QT_TRANSLATE_NOOP("Prompt", "Customer data was found."))


def findings_lines(findings: tuple[FindingSummary, ...]) -> list[str]:
    """One line per finding type: name, count and a few masked values (never raw values)."""
    lines = []
    for f in findings:
        shown = ", ".join(f.masked[:MAX_MASKED_SHOWN])
        more = "" if len(f.masked) <= MAX_MASKED_SHOWN else " …"
        line = _tr(QT_TRANSLATE_NOOP("Prompt", "{name} × {count}")).format(
            name=i18n.finding_type(f.type), count=f.count)
        lines.append(_tr(_LABELLED).format(label=line, value=shown + more) if shown else line)
    return lines


def detail_lines(detail: dict[str, str]) -> list[str]:
    """The request's known details (printer, drive, file, application) as labelled lines."""
    return [
        _tr(_LABELLED).format(label=_tr(_DETAIL_LABELS[k]), value=v)
        for k, v in detail.items() if k in _DETAIL_LABELS and v
    ]


def _heading_font(widget: QWidget) -> QFont:
    font = QFont(widget.font())
    font.setPointSizeF(font.pointSizeF() * 1.25)
    font.setBold(True)
    return font


def centre_on_primary(widget: QWidget) -> None:
    """Place a top-level widget in the middle of the primary screen (before showing it)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return
    geo = screen.availableGeometry()
    widget.adjustSize()
    size = widget.sizeHint().expandedTo(widget.minimumSize())
    widget.move(geo.center() - QPoint(size.width() // 2, size.height() // 2))


class Toast(QWidget):
    """A small frameless always-on-top note at the bottom right; it never takes the focus.

    It hides itself after a few seconds or when clicked. For the idle warning it counts down the
    seconds before the lock. One toast is reused: a new note replaces the previous one.
    """

    def __init__(self) -> None:
        super().__init__(None, Qt.WindowType.ToolTip | Qt.WindowType.FramelessWindowHint
                         | Qt.WindowType.WindowStaysOnTopHint)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setWindowTitle("Teller Guard notice")  # found by name in the X11 tests
        self.setObjectName("toast")
        self.setStyleSheet(
            "#toast { background: #fffbe6; border: 1px solid #d4a017; border-radius: 6px; }"
        )
        self.setMinimumWidth(360)
        self.setMaximumWidth(480)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        top = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(app_icon("degraded").pixmap(24, 24))
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        self.title = QLabel()
        self.title.setFont(_heading_font(self))
        self.title.setWordWrap(True)
        top.addWidget(self.title, 1)
        layout.addLayout(top)
        self.body = QLabel()
        self.body.setWordWrap(True)
        layout.addWidget(self.body)
        self.countdown = QLabel()
        layout.addWidget(self.countdown)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._remaining = 0
        self._counting = False
        self.request: PromptRequest | None = None

    def show_request(self, request: PromptRequest) -> None:
        """Show `request` (Qt thread)."""
        self.request = request
        self.title.setText(headline(request))
        lines = findings_lines(request.findings) + detail_lines(request.detail)
        self.body.setText("\n".join(lines))
        self.body.setVisible(bool(lines))
        self._counting = request.kind == IdleKind.WARN
        seconds = request.timeout_s if self._counting else TOAST_SECONDS
        self._remaining = max(1, math.ceil(seconds))
        self._update_countdown()
        self._timer.start()
        self.adjustSize()
        screen = QGuiApplication.primaryScreen()
        if screen is not None:
            geo = screen.availableGeometry()
            # Without a window manager no panel reserves its space: keep clear of a taskbar.
            bottom = 16 if geo != screen.geometry() else 64
            self.move(geo.right() - self.width() - 16, geo.bottom() - self.height() - bottom)
        self.show()
        self.raise_()

    def _update_countdown(self) -> None:
        if self._counting:
            self.countdown.setText(self.tr("The screen locks in {n} s. Move the mouse or press a "
                                           "key to stay signed in.").format(n=self._remaining))
        self.countdown.setVisible(self._counting)

    def _tick(self) -> None:
        self._remaining -= 1
        if self._remaining <= 0:
            self.dismiss()
            return
        self._update_countdown()

    def dismiss(self) -> None:
        """Hide the toast (Qt thread)."""
        self._timer.stop()
        self.hide()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.dismiss()
        event.accept()


class PromptDialog(QDialog):
    """Common frame of the modal prompts: headline, findings, countdown, continue/cancel buttons.

    `answered` is emitted exactly once with the teller's `PromptAnswer`; the countdown reaching zero
    answers `PromptAnswer(proceed=False, timed_out=True)`.
    """

    answered = Signal(object)

    def __init__(self, request: PromptRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Dialog | Qt.WindowType.WindowStaysOnTopHint
                         | Qt.WindowType.WindowTitleHint)
        self.request = request
        self.answer: PromptAnswer | None = None
        self.setWindowTitle(self.tr("Teller Guard"))
        self.setWindowIcon(app_icon("degraded"))
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
        self.setMinimumWidth(460)
        self.setObjectName("prompt")
        self.setStyleSheet("#prompt { background: #ffffff; }")

        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(20, 16, 20, 16)
        self.layout_.setSpacing(10)
        top = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(app_icon("degraded").pixmap(40, 40))
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        self.headline = QLabel(headline(request))
        self.headline.setFont(_heading_font(self))
        self.headline.setWordWrap(True)
        top.addWidget(self.headline, 1)
        self.layout_.addLayout(top)
        lines = findings_lines(request.findings) + detail_lines(request.detail)
        self.findings = QLabel("\n".join(lines))
        self.findings.setWordWrap(True)
        self.findings.setVisible(bool(lines))
        self.findings.setFrameShape(QFrame.Shape.StyledPanel)
        self.findings.setContentsMargins(8, 6, 8, 6)
        self.layout_.addWidget(self.findings)
        self.instruction = QLabel()
        self.instruction.setWordWrap(True)
        self.layout_.addWidget(self.instruction)

        self.body = QVBoxLayout()
        self.layout_.addLayout(self.body)

        self.countdown = QLabel()
        self.countdown.setObjectName("countdown")
        self.countdown.setStyleSheet("#countdown { color: #8a5a00; }")
        self.layout_.addWidget(self.countdown)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.proceed_button = QPushButton()
        self.cancel_button = QPushButton(self.tr("&Cancel"))
        buttons.addWidget(self.proceed_button)
        buttons.addWidget(self.cancel_button)
        self.layout_.addLayout(buttons)
        self.proceed_button.clicked.connect(self._on_proceed)
        self.cancel_button.clicked.connect(self.reject)

        self._remaining = max(1, math.ceil(request.timeout_s))
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._update_countdown()

    # --- answering -----------------------------------------------------------------------------

    def _reason(self) -> str:
        return ""

    def _on_proceed(self) -> None:
        if not self.proceed_button.isEnabled():
            return
        self._finish(PromptAnswer(proceed=True, reason=self._reason()))
        super().accept()

    def accept(self) -> None:
        self._on_proceed()

    def reject(self) -> None:
        self._finish(PromptAnswer(proceed=False))
        super().reject()

    def _finish(self, answer: PromptAnswer) -> None:
        self._timer.stop()
        if self.answer is None:
            self.answer = answer
            self.answered.emit(answer)

    def _tick(self) -> None:
        self._remaining -= 1
        if self._remaining <= 0:
            self._finish(PromptAnswer(proceed=False, timed_out=True))
            super().reject()
            return
        self._update_countdown()

    def _update_countdown(self) -> None:
        self.countdown.setText(
            self.tr("Cancels automatically in {n} s.").format(n=self._remaining))

    # --- showing -------------------------------------------------------------------------------

    def show_prompt(self) -> None:
        """Show the dialog on top of everything and start the countdown (Qt thread)."""
        centre_on_primary(self)
        self.show()
        self.raise_()
        self.activateWindow()
        self._timer.start()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        focus = self.initial_focus()
        if focus is not None:
            focus.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def initial_focus(self) -> QWidget | None:
        return self.cancel_button

    def closeEvent(self, event: QCloseEvent) -> None:
        self._finish(PromptAnswer(proceed=False))
        super().closeEvent(event)


class ConfirmDialog(PromptDialog):
    """Confirm (确认) or cancel (取消). Enter and Esc both take the safe choice: cancel."""

    def __init__(self, request: PromptRequest, parent: QWidget | None = None) -> None:
        super().__init__(request, parent)
        self.instruction.setText(self.tr("Continue only if the customer's data is needed for "
                                         "this task. Confirm to continue, or cancel."))
        self.proceed_button.setText(self.tr("C&onfirm"))
        self.proceed_button.setAutoDefault(False)
        self.cancel_button.setDefault(True)
        self.setTabOrder(self.cancel_button, self.proceed_button)


class JustifyDialog(PromptDialog):
    """Pick a reason or type one (at least `min_reason_len` characters), then continue or cancel."""

    def __init__(self, request: PromptRequest, parent: QWidget | None = None) -> None:
        super().__init__(request, parent)
        self.min_len = max(1, request.min_reason_len)
        self.instruction.setText(self.tr("Give the business reason to continue. It is recorded "
                                         "with this event."))
        self.proceed_button.setText(self.tr("C&ontinue"))
        self.proceed_button.setDefault(True)
        self.cancel_button.setAutoDefault(False)

        reasons = request.reasons or tuple(
            QCoreApplication.translate("JustifyDialog", r) for r in _DEFAULT_REASONS)
        self.group = QButtonGroup(self)
        self.reason_buttons: list[QRadioButton] = []
        self._reason_texts: dict[int, str] = {}
        for i, text in enumerate(reasons):
            button = QRadioButton(text.replace("&", "&&"))  # policy text, not a mnemonic
            self._reason_texts[id(button)] = text
            self.group.addButton(button, i)
            self.reason_buttons.append(button)
            self.body.addWidget(button)
        self.other_button = QRadioButton(self.tr("&Other reason:"))
        self.group.addButton(self.other_button, len(reasons))
        self.body.addWidget(self.other_button)
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText(
            self.tr("Type the reason (at least {n} characters)").format(n=self.min_len))
        self.reason_edit.setMaxLength(500)
        self.body.addWidget(self.reason_edit)
        self.hint = QLabel()
        self.hint.setObjectName("hint")
        self.hint.setStyleSheet("#hint { color: #666666; }")
        self.body.addWidget(self.hint)

        self.reason_edit.textEdited.connect(self._on_typed)
        self.group.buttonToggled.connect(lambda *_: self._validate())
        self.reason_edit.returnPressed.connect(self._on_proceed)
        previous: QWidget = self.reason_buttons[0] if self.reason_buttons else self.other_button
        for w in [*self.reason_buttons[1:], self.other_button, self.reason_edit,
                  self.proceed_button, self.cancel_button]:
            self.setTabOrder(previous, w)
            previous = w
        self._validate()

    def _on_typed(self, _text: str) -> None:
        if not self.other_button.isChecked():
            self.other_button.setChecked(True)
        self._validate()

    def _reason(self) -> str:
        checked = self.group.checkedButton()
        if checked is None:
            return ""
        if checked is self.other_button:
            return self.reason_edit.text().strip()
        return self._reason_texts.get(id(checked), checked.text())

    def _validate(self) -> None:
        checked = self.group.checkedButton()
        typed = len(self.reason_edit.text().strip())
        if checked is self.other_button:
            ok = typed >= self.min_len
            self.hint.setText(self.tr("{typed} of at least {n} characters").format(
                typed=typed, n=self.min_len))
        else:
            ok = checked is not None
            self.hint.setText("" if ok else self.tr("Pick a reason or type your own."))
        self.proceed_button.setEnabled(ok)

    def initial_focus(self) -> QWidget | None:
        return self.reason_buttons[0] if self.reason_buttons else self.reason_edit


def make_dialog(request: PromptRequest, parent: QWidget | None = None) -> PromptDialog:
    """The dialog for `request`: justify for JUSTIFY, confirm for everything else."""
    if request.action == Action.JUSTIFY:
        return JustifyDialog(request, parent)
    return ConfirmDialog(request, parent)


class SupervisorDialog(QDialog):
    """"Ask your supervisor" (请授权人员授权): a supervisor standing at the counter approves the
    blocked action with their own credential, or the teller types a one-time code IT issued.

    Each try runs `check(method, supervisor_id, secret)` on a worker thread (scrypt, PAM and the
    local channel may take a second); wrong tries show the back-off and wait it out. `answered`
    is emitted once: the successful `ApprovalResult` (with the typed reason) or None (cancelled,
    timed out). Keyboard: the credential field has the focus, Enter approves, Esc cancels, Tab
    goes supervisor → credential → reason → buttons."""

    answered = Signal(object)

    def __init__(self, request: ApprovalRequest, check: Check,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Dialog | Qt.WindowType.WindowStaysOnTopHint
                         | Qt.WindowType.WindowTitleHint)
        self.request = request
        self._check = check
        self.result_: ApprovalResult | None = None
        self._done = False
        self._pending = False
        self._deadline = 0.0
        self._key = "ok"
        self.setWindowTitle(self.tr("Teller Guard: ask your supervisor"))
        self.setWindowIcon(app_icon("degraded"))
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
        self.setMinimumWidth(500)
        self.setObjectName("supervisor")
        self.setStyleSheet("#supervisor { background: #ffffff; }"
                           "#supervisor #message { color: #b00020; }")
        v = QVBoxLayout(self)
        v.setContentsMargins(20, 16, 20, 16)
        v.setSpacing(10)
        top = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(app_icon("alert").pixmap(40, 40))
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        self.headline = QLabel(self.tr("Ask your supervisor to approve"))
        self.headline.setFont(_heading_font(self))
        top.addWidget(self.headline, 1)
        v.addLayout(top)
        what = QLabel(headline(request.prompt) + " " + self.tr(
            "It was stopped. A supervisor at the counter can let it go ahead with their own "
            "credential; the approval is recorded with both names."))
        what.setWordWrap(True)
        v.addWidget(what)
        lines = findings_lines(request.prompt.findings) + detail_lines(request.prompt.detail)
        self.findings = QLabel("\n".join(lines))
        self.findings.setWordWrap(True)
        self.findings.setVisible(bool(lines))
        self.findings.setFrameShape(QFrame.Shape.StyledPanel)
        self.findings.setContentsMargins(8, 6, 8, 6)
        v.addWidget(self.findings)

        self.who = QComboBox()
        for sid, name in request.supervisors:
            self.who.addItem(name if name == sid else f"{name} ({sid})", (SUPERVISOR, sid))
        if request.codes:
            self.who.addItem(self.tr("One-time code from IT (supervisor not here)"), (CODE, ""))
        who_label = QLabel(self.tr("&Approved by:"))
        who_label.setBuddy(self.who)
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret_label = QLabel()
        self.secret_label.setBuddy(self.secret)
        self.reason = QLineEdit()
        self.reason.setMaxLength(500)
        self.reason.setPlaceholderText(self.tr("Why it may go ahead (optional)"))
        reason_label = QLabel(self.tr("&Reason:"))
        reason_label.setBuddy(self.reason)
        for label, field in ((who_label, self.who), (self.secret_label, self.secret),
                             (reason_label, self.reason)):
            row = QHBoxLayout()
            label.setMinimumWidth(120)
            row.addWidget(label)
            row.addWidget(field, 1)
            v.addLayout(row)
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        v.addWidget(self.message)
        self.countdown = QLabel()
        self.countdown.setObjectName("countdown")
        self.countdown.setStyleSheet("#countdown { color: #8a5a00; }")
        v.addWidget(self.countdown)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.approve_button = QPushButton(self.tr("A&pprove"))
        self.approve_button.setDefault(True)
        self.cancel_button = QPushButton(self.tr("&Cancel"))
        self.cancel_button.setAutoDefault(False)
        buttons.addWidget(self.approve_button)
        buttons.addWidget(self.cancel_button)
        v.addLayout(buttons)
        self.approve_button.clicked.connect(self._submit)
        self.cancel_button.clicked.connect(self.reject)
        self.secret.returnPressed.connect(self._submit)
        self.reason.returnPressed.connect(self._submit)
        self.who.currentIndexChanged.connect(lambda _i: self._chosen())
        self.setTabOrder(self.who, self.secret)
        self.setTabOrder(self.secret, self.reason)
        self.setTabOrder(self.reason, self.approve_button)
        self.setTabOrder(self.approve_button, self.cancel_button)
        self._remaining = max(1, math.ceil(request.prompt.timeout_s))
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._chosen()
        self._update_countdown()

    def choice(self) -> tuple[str, str]:
        data = self.who.currentData()
        return (str(data[0]), str(data[1])) if isinstance(data, tuple) else (SUPERVISOR, "")

    def _chosen(self) -> None:
        method, _ = self.choice()
        self.secret_label.setText(self.tr("&Code:") if method == CODE
                                  else self.tr("&Credential:"))
        self.secret.setPlaceholderText(self.tr("12 digits from IT") if method == CODE
                                       else self.tr("The supervisor's password"))
        self.secret.clear()

    def _submit(self) -> None:
        secret = self.secret.text()
        if self._pending or self._done or not secret or not self.approve_button.isEnabled():
            return
        method, sid = self.choice()
        self._pending = True
        self.secret.clear()
        self._set_enabled(False)
        self.message.setText(self.tr("Checking…"))
        check, reason = self._check, self.reason.text().strip()

        def work() -> None:
            try:
                result = check(method, sid, secret)
            except Exception:  # a failing check never approves
                log.exception("the approval check failed")
                result = ApprovalResult(False, method, sid, message_key="wrong_credential")
            if result.ok:
                result = ApprovalResult(True, result.method, result.supervisor,
                                        result.supervisor_name, reason=reason)
            QTimer.singleShot(0, self, lambda: self._show_result(result))

        threading.Thread(target=work, name="approval-check", daemon=True).start()

    def _set_enabled(self, on: bool) -> None:
        for w in (self.who, self.secret, self.reason, self.approve_button):
            w.setEnabled(on)

    def _show_result(self, result: ApprovalResult) -> None:
        self._pending = False
        if self._done:
            return
        if result.ok:
            self._finish(result)
            super().accept()
            return
        self._key = result.message_key
        self._deadline = time.monotonic() + max(0.0, result.retry_after_s)
        self._wait()

    def _wait(self) -> None:
        if self._done:
            return
        left = max(0, math.ceil(self._deadline - time.monotonic() - 0.001))
        text = i18n.unlock_message(self._key)
        if left > 0:
            text += " " + QCoreApplication.translate("LockScreen", "Try again in {n} s.").format(
                n=left)
        self.message.setText(text)
        self._set_enabled(left == 0)
        if left > 0:
            QTimer.singleShot(250, self, self._wait)
        else:
            self.secret.setFocus(Qt.FocusReason.OtherFocusReason)

    def _finish(self, result: ApprovalResult | None) -> None:
        self._timer.stop()
        if not self._done:
            self._done = True
            self.result_ = result
            self.answered.emit(result)

    def accept(self) -> None:
        self._submit()

    def reject(self) -> None:
        self._finish(None)
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._finish(None)
        super().closeEvent(event)

    def _tick(self) -> None:
        self._remaining -= 1
        if self._remaining <= 0 and not self._pending:
            self._finish(None)
            super().reject()
            return
        self._update_countdown()

    def _update_countdown(self) -> None:
        self.countdown.setText(self.tr("Stays blocked unless approved within {n} s.").format(
            n=max(0, self._remaining)))

    def show_prompt(self) -> None:
        centre_on_primary(self)
        self.show()
        self.raise_()
        self.activateWindow()
        self.secret.setFocus(Qt.FocusReason.ActiveWindowFocusReason)
        self._timer.start()


class PromptError(RuntimeError):
    """`ask()` was called on the Qt thread, where blocking for an answer would freeze the UI."""


class QtPrompter:
    """`guard.pipeline.prompt.Prompter` with Qt widgets, driven through the `MainThread` gateway."""

    def __init__(self, main: MainThread) -> None:
        self._main = main
        self._toast: Toast | None = None
        self._open: set[PromptDialog] = set()
        self._open_approvals: set[SupervisorDialog] = set()
        self.on_dialog: Callable[[PromptDialog], None] | None = None  # tests, screenshots
        self.on_approval_dialog: Callable[[SupervisorDialog], None] | None = None

    def notify(self, request: PromptRequest) -> None:
        """Show a toast; returns at once (any thread)."""
        self._main.run_on_main(lambda: self._show_toast(request))

    def toast(self) -> Toast | None:
        """The toast widget once one was shown (Qt thread)."""
        return self._toast

    def _show_toast(self, request: PromptRequest) -> None:
        if self._toast is None:
            self._toast = Toast()
        self._toast.show_request(request)

    def ask(self, request: PromptRequest) -> PromptAnswer:
        """Show the modal dialog and wait for the answer (worker threads only)."""
        if self._main.on_main():
            raise PromptError("ask() blocks for the teller's answer; call it from a worker thread")
        done = threading.Event()
        result: list[PromptAnswer] = []
        dialogs: list[PromptDialog] = []

        def show() -> None:
            dialog = make_dialog(request)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialogs.append(dialog)
            self._open.add(dialog)

            def on_answer(answer: PromptAnswer) -> None:
                result.append(answer)
                self._open.discard(dialog)
                done.set()

            dialog.answered.connect(on_answer)
            dialog.show_prompt()
            if self.on_dialog is not None:
                self.on_dialog(dialog)

        try:
            self._main.call_on_main(show, timeout=5.0)
        except MainThreadTimeout:
            log.warning("the prompt could not be shown in time; taking the safe choice")
            return PromptAnswer(proceed=False, timed_out=True)
        # The dialog's own countdown answers; the margin only covers a Qt thread that hangs.
        if not done.wait(request.timeout_s + 5.0):
            log.warning("the prompt did not answer in time; taking the safe choice")
            for dialog in dialogs:
                self._main.run_on_main(dialog.reject)
            return PromptAnswer(proceed=False, timed_out=True)
        return result[0]

    def approve(self, request: ApprovalRequest, check: Check) -> ApprovalResult | None:
        """Show the supervisor dialog and wait until approved (the result) or cancelled / timed
        out (None). Worker threads only; `check` runs on the dialog's own worker thread."""
        if self._main.on_main():
            raise PromptError("approve() blocks for the supervisor; call it from a worker thread")
        done = threading.Event()
        result: list[ApprovalResult | None] = []
        dialogs: list[SupervisorDialog] = []

        def show() -> None:
            dialog = SupervisorDialog(request, check)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialogs.append(dialog)
            self._open_approvals.add(dialog)

            def on_answer(answer: ApprovalResult | None) -> None:
                result.append(answer)
                self._open_approvals.discard(dialog)
                done.set()

            dialog.answered.connect(on_answer)
            dialog.show_prompt()
            if self.on_approval_dialog is not None:
                self.on_approval_dialog(dialog)

        try:
            self._main.call_on_main(show, timeout=5.0)
        except MainThreadTimeout:
            log.warning("the supervisor dialog could not be shown in time; the block stays")
            return None
        # The dialog's countdown answers; a back-off wait (≤ the policy's maximum) may add to it.
        if not done.wait(request.prompt.timeout_s + 330.0):
            for dialog in dialogs:
                self._main.run_on_main(dialog.reject)
            return None
        return result[0]

    def open_approvals(self) -> list[SupervisorDialog]:
        """The supervisor dialogs on screen now (Qt thread)."""
        return list(self._open_approvals)

    def open_dialogs(self) -> list[PromptDialog]:
        """The prompts on screen now (Qt thread)."""
        return list(self._open)

    def close_all(self) -> None:
        """Cancel every open prompt (Qt thread), e.g. when the agent quits."""
        for dialog in list(self._open):
            dialog.reject()
        for approval in list(self._open_approvals):
            approval.reject()

