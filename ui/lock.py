"""The guard's own lock overlay (the fallback when no OS lock took) and the first-run PIN dialog.

`LockOverlay` implements `guard.ports.LockPort`. It covers every screen with a window that stays on
top, grabs the keyboard and the pointer (so Alt+Tab, Alt+F4 and clicks never reach another
window), ignores Escape and close requests, and goes away only when the agent accepts the teller's
credential (`Agent.unlock`, which also calls `hide_lock`). Wrong tries show the agent's back-off.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QObject,
    QRegularExpression,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QCloseEvent,
    QFocusEvent,
    QGuiApplication,
    QKeyEvent,
    QRegularExpressionValidator,
    QScreen,
)
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

from guard.app.session import UnlockResult
from ui import i18n
from ui.icons import app_icon
from ui.mainthread import MainThread
from ui.prompt import centre_on_primary

log = logging.getLogger(__name__)

REASSERT_MS = 500
_FLAGS = (Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint
          | Qt.WindowType.X11BypassWindowManagerHint | Qt.WindowType.Tool)


class LockScreen(QWidget):
    """The overlay on one screen; the one on the primary screen carries the unlock panel."""

    submitted = Signal(str)

    def __init__(self, screen: QScreen, with_panel: bool,
                 methods: tuple[str, ...] = ("teller",),
                 supervisors: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(None, _FLAGS)
        self.setWindowTitle("Teller Guard lock")
        self.setObjectName("lockscreen")
        self.setStyleSheet(
            "#lockscreen { background: #0d2137; }"
            "#lockscreen QLabel, #lockscreen QRadioButton { color: #ffffff; }"
            "#panel { background: #16324f; border: 1px solid #2f5d8a; border-radius: 10px; }"
            "#lockscreen #message { color: #ffd54f; }"
        )
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setCursor(Qt.CursorShape.ArrowCursor)
        self._screen = screen
        self.allow_close = False
        self.edit: QLineEdit | None = None
        self.button: QPushButton | None = None
        self.message: QLabel | None = None
        self.locked_at: QLabel | None = None
        self.hint: QLabel | None = None
        self.methods = methods or ("teller",)
        self.supervisors = supervisors
        self.method_buttons: dict[str, QRadioButton] = {}
        self.method_group: QButtonGroup | None = None
        self.who: QComboBox | None = None
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        if with_panel:
            outer.addWidget(self._build_panel(), 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)

    def _build_panel(self) -> QFrame:
        panel = QFrame()
        panel.setObjectName("panel")
        panel.setFixedWidth(540)
        v = QVBoxLayout(panel)
        v.setContentsMargins(32, 28, 32, 28)
        v.setSpacing(12)
        icon = QLabel()
        icon.setPixmap(app_icon("alert").pixmap(72, 72))
        icon.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        v.addWidget(icon)
        title = QLabel(self.tr("This PC is locked"))
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        v.addWidget(title)
        self.locked_at = QLabel()
        self.locked_at.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        v.addWidget(self.locked_at)
        self.hint = QLabel(self.accepted_text())
        self.hint.setWordWrap(True)
        v.addWidget(self.hint)
        if len(self.methods) > 1:
            # One choice per credential this overlay accepts, each with its mnemonic.
            self.method_group = QButtonGroup(self)
            for i, method in enumerate(self.methods):
                button = QRadioButton(i18n.unlock_method(method))
                button.setObjectName(f"method-{method}")
                self.method_group.addButton(button, i)
                self.method_buttons[method] = button
                button.installEventFilter(self)
                v.addWidget(button)
            self.method_buttons[self.methods[0]].setChecked(True)
            self.method_group.buttonToggled.connect(lambda *_: self._method_changed())
        if "supervisor" in self.methods and self.supervisors:
            self.who = QComboBox()
            for sid, name in self.supervisors:
                self.who.addItem(name if name == sid else f"{name} ({sid})", sid)
            self.who.setAccessibleName(self.tr("Supervisor"))
            v.addWidget(self.who)
        row = QHBoxLayout()
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setMinimumHeight(32)
        row.addWidget(self.edit, 1)
        self.button = QPushButton(self.tr("&Unlock"))
        self.button.setDefault(True)
        self.button.setMinimumHeight(32)
        row.addWidget(self.button)
        v.addLayout(row)
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)
        v.addWidget(self.message)
        self.edit.returnPressed.connect(self._submit)
        self.button.clicked.connect(self._submit)
        self._method_changed()
        return panel

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # A mnemonic (Alt+S …) focuses its radio button at once but checks it only 100 ms later
        # (animateClick): check it now and hand the focus to the field, so nothing the teller
        # types meanwhile is lost. Tab still walks through the buttons.
        if (event.type() == QEvent.Type.FocusIn and isinstance(watched, QRadioButton)
                and isinstance(event, QFocusEvent)
                and event.reason() not in (Qt.FocusReason.TabFocusReason,
                                           Qt.FocusReason.BacktabFocusReason)):
            watched.setChecked(True)
            if self.edit is not None:
                edit = self.edit
                QTimer.singleShot(0, self, lambda: edit.setFocus(Qt.FocusReason.OtherFocusReason))
        return super().eventFilter(watched, event)

    def accepted_text(self) -> str:
        """The sentence naming exactly the credentials this overlay accepts."""
        names = {
            "teller": self.tr("your password or PIN"),
            "supervisor": self.tr("a supervisor's credential"),
            "it": self.tr("the IT credential"),
            "code": self.tr("a one-time recovery code from IT"),
        }
        accepted = self.tr(", ").join(names[m] for m in self.methods if m in names)
        return self.tr("Teller Guard locked the screen to protect customer data. It unlocks "
                       "with: {accepted}.").format(accepted=accepted)

    def method(self) -> str:
        """The credential kind chosen (``teller``, ``supervisor``, ``it``, ``code``)."""
        for method, button in self.method_buttons.items():
            if button.isChecked():
                return method
        return self.methods[0]

    def supervisor(self) -> str:
        return str(self.who.currentData() or "") if self.who is not None else ""

    def _method_changed(self) -> None:
        method = self.method()
        if self.who is not None:
            self.who.setVisible(method == "supervisor")
        if self.edit is None:
            return
        placeholder = {
            "teller": self.tr("Password or PIN"),
            "supervisor": self.tr("Supervisor's password"),
            "it": self.tr("IT credential"),
            "code": self.tr("Recovery code (12 digits)"),
        }.get(method, self.tr("Password or PIN"))
        self.edit.setPlaceholderText(placeholder)
        self.edit.setAccessibleName(placeholder)
        self.edit.setFocus(Qt.FocusReason.OtherFocusReason)
        # A mnemonic focuses its radio button after toggling it: take the focus back for the
        # field once that is done, so the next key typed lands in it.
        edit = self.edit
        QTimer.singleShot(0, self, lambda: edit.setFocus(Qt.FocusReason.OtherFocusReason))

    def _submit(self) -> None:
        if self.edit is None or not self.edit.isEnabled():
            return
        text = self.edit.text()
        if text:
            self.submitted.emit(text)

    def cover(self) -> None:
        """Show full screen on its screen (Qt thread)."""
        # Without a window manager showFullScreen() alone keeps the default size.
        self.setGeometry(self._screen.geometry())
        self.showFullScreen()
        self.raise_()
        self.activateWindow()
        if self.edit is not None:
            self.edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Escape, Alt+F4 and every other key that reaches the overlay itself do nothing.
        event.accept()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.allow_close:
            event.accept()
        else:
            event.ignore()


class LockOverlay:
    """`guard.ports.LockPort` with one `LockScreen` per screen; any thread may call it."""

    def __init__(self, main: MainThread) -> None:
        self._main = main
        self._screens: list[LockScreen] = []
        self._unlock: Callable[..., UnlockResult] | None = None
        self._methods: Callable[[], tuple[str, ...]] = lambda: ("teller",)
        self._supervisors: Callable[[], tuple[tuple[str, str], ...]] = tuple
        self._timer: QTimer | None = None
        self._deadline = 0.0
        self._key = "ok"
        self._pending = False
        self.last_result: UnlockResult | None = None

    def set_unlocker(self, unlock: Callable[..., UnlockResult],
                     methods: Callable[[], tuple[str, ...]] | None = None,
                     supervisors: Callable[[], tuple[tuple[str, str], ...]] | None = None
                     ) -> None:
        """The function that checks a credential (the agent's `unlock(secret, by,
        supervisor)`), and what the overlay accepts (the agent's `unlock_methods` and
        `supervisors`; asked on the Qt thread at each lock)."""
        self._unlock = unlock
        if methods is not None:
            self._methods = methods
        if supervisors is not None:
            self._supervisors = supervisors

    # --- LockPort ------------------------------------------------------------------------------

    def show_lock(self) -> None:
        """Cover every screen and grab keyboard and pointer (any thread; returns at once)."""
        self._main.run_on_main(self._show)

    def hide_lock(self) -> None:
        """Remove the overlay (any thread; returns at once)."""
        self._main.run_on_main(self._hide)

    # --- Qt thread -----------------------------------------------------------------------------

    def is_shown(self) -> bool:
        return bool(self._screens)

    def panel(self) -> LockScreen | None:
        """The screen with the unlock panel, while locked."""
        return self._screens[0] if self._screens else None

    def _show(self) -> None:
        if self._screens:
            self._reassert()
            return
        primary = QGuiApplication.primaryScreen()
        screens = QGuiApplication.screens()
        ordered = [primary, *[s for s in screens if s is not primary]] if primary else screens
        try:
            methods, supervisors = self._methods(), self._supervisors()
        except Exception:  # the overlay must come up whatever: offer the teller's credential
            log.exception("cannot tell which credentials unlock")
            methods, supervisors = ("teller",), ()
        for i, screen in enumerate(ordered):
            ls = LockScreen(screen, with_panel=i == 0, methods=methods, supervisors=supervisors)
            ls.submitted.connect(self._try_unlock)
            ls.cover()
            self._screens.append(ls)
        p = self._screens[0]
        if p.locked_at is not None:
            p.locked_at.setText(QCoreApplication.translate("LockScreen", "Locked at {time}").format(
                time=datetime.now().strftime("%H:%M")))
        self._grab()
        self._timer = QTimer()
        self._timer.setInterval(REASSERT_MS)
        self._timer.timeout.connect(self._reassert)
        self._timer.start()

    def _grab(self) -> None:
        if not self._screens:
            return
        handle = self._screens[0].windowHandle()
        if handle is None:
            return
        if not handle.setKeyboardGrabEnabled(True):
            log.debug("keyboard grab refused; retrying")
        if not handle.setMouseGrabEnabled(True):
            log.debug("pointer grab refused; retrying")

    def _reassert(self) -> None:
        # Another window mapped later could sit above the overlay, or a grab could have been
        # lost: raise every screen again and grab again.
        for ls in self._screens:
            if not ls.isVisible():
                ls.cover()
            ls.raise_()
        panel = self._screens[0] if self._screens else None
        if panel is not None and panel.edit is not None and not panel.edit.hasFocus():
            panel.activateWindow()
            panel.edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self._grab()

    def _hide(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer.deleteLater()
            self._timer = None
        for ls in self._screens:
            handle = ls.windowHandle()
            if handle is not None:
                handle.setKeyboardGrabEnabled(False)
                handle.setMouseGrabEnabled(False)
            ls.allow_close = True
            ls.close()
            ls.deleteLater()
        self._screens = []
        self._pending = False

    def _try_unlock(self, credential: str) -> None:
        panel = self.panel()
        if panel is None or panel.edit is None or self._pending:
            return
        if self._unlock is None:
            self._show_result(UnlockResult(ok=False, message_key="no_pin"))
            return
        self._pending = True
        panel.edit.setEnabled(False)
        unlock = self._unlock
        by, supervisor = panel.method(), panel.supervisor()

        def work() -> None:
            try:
                result = (unlock(credential) if by == "teller" and not supervisor
                          else unlock(credential, by, supervisor))
            except Exception:
                log.exception("the unlock check failed")
                result = UnlockResult(ok=False, message_key="wrong_credential")
            self._main.run_on_main(lambda: self._show_result(result))

        # The check may take up to a second (scrypt, PAM): keep the overlay painting meanwhile.
        threading.Thread(target=work, name="unlock-check", daemon=True).start()

    def _show_result(self, result: UnlockResult) -> None:
        self._pending = False
        self.last_result = result
        if result.ok:
            self._hide()
            return
        panel = self.panel()
        if panel is None or panel.edit is None or panel.message is None:
            return
        panel.edit.clear()
        self._key = result.message_key
        self._deadline = time.monotonic() + max(0.0, result.retry_after_s)
        self._count_down()

    def _wait_left_s(self) -> int:
        return max(0, math.ceil(self._deadline - time.monotonic() - 0.001))

    def _count_down(self) -> None:
        # The wait ends on the monotonic clock, never earlier than the agent's back-off.
        panel = self.panel()
        if panel is None or panel.edit is None or panel.message is None:
            return
        left = self._wait_left_s()
        text = i18n.unlock_message(self._key)
        if left > 0:
            wait = QCoreApplication.translate("LockScreen", "Try again in {n} s.").format(n=left)
            text = QCoreApplication.translate("LockScreen", "{message} {wait}").format(
                message=text, wait=wait)
        panel.message.setText(text)
        waiting = left > 0
        panel.edit.setEnabled(not waiting)
        if panel.button is not None:
            panel.button.setEnabled(not waiting)
        if waiting:
            QTimer.singleShot(250, self._count_down)
        else:
            panel.edit.setFocus(Qt.FocusReason.OtherFocusReason)


class PinSetupDialog(QDialog):
    """First run: the teller chooses the PIN that unlocks the guard's overlay.

    `set_pin` is the agent's `set_pin`; it raises `ValueError(key)` for an unacceptable PIN, which
    the dialog words through tr(). "Later" closes it; the agent asks again at the next start.
    """

    def __init__(self, set_pin: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Dialog | Qt.WindowType.WindowStaysOnTopHint)
        self._set_pin = set_pin
        self.saved = False
        self.setWindowTitle(self.tr("Teller Guard: set your unlock PIN"))
        self.setWindowIcon(app_icon("protected"))
        self.setMinimumWidth(420)
        v = QVBoxLayout(self)
        v.setContentsMargins(20, 16, 20, 16)
        intro = QLabel(self.tr("When Teller Guard locks this PC and the system password cannot be "
                               "checked, this PIN unlocks it. Choose 6 to 12 digits."))
        intro.setWordWrap(True)
        v.addWidget(intro)
        digits = QRegularExpressionValidator(QRegularExpression(r"\d{0,12}"), self)
        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setValidator(digits)
        self.repeat = QLineEdit()
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat.setValidator(digits)
        pin_label = QLabel(self.tr("&PIN:"))
        pin_label.setBuddy(self.pin)
        repeat_label = QLabel(self.tr("&Repeat PIN:"))
        repeat_label.setBuddy(self.repeat)
        for label, edit in ((pin_label, self.pin), (repeat_label, self.repeat)):
            row = QHBoxLayout()
            label.setMinimumWidth(110)
            row.addWidget(label)
            row.addWidget(edit, 1)
            v.addLayout(row)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("message")
        self.message.setStyleSheet("#message { color: #b00020; }")
        v.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.save_button = QPushButton(self.tr("&Save PIN"))
        self.save_button.setDefault(True)
        self.later_button = QPushButton(self.tr("&Later"))
        self.later_button.setAutoDefault(False)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.later_button)
        v.addLayout(buttons)
        self.save_button.clicked.connect(self._save)
        self.later_button.clicked.connect(self.reject)
        self.pin.textChanged.connect(self._validate)
        self.repeat.textChanged.connect(self._validate)
        self.setTabOrder(self.pin, self.repeat)
        self.setTabOrder(self.repeat, self.save_button)
        self.setTabOrder(self.save_button, self.later_button)
        self._validate()
        centre_on_primary(self)

    def _validate(self) -> None:
        pin, again = self.pin.text(), self.repeat.text()
        ok = bool(pin) and pin == again
        self.save_button.setEnabled(ok)
        if again and pin != again and len(again) >= len(pin):
            self.message.setText(self.tr("The two PINs differ."))
        else:
            self.message.setText("")

    def _save(self) -> None:
        if not self.save_button.isEnabled():
            return
        try:
            self._set_pin(self.pin.text())
        except ValueError as exc:
            self.pin.clear()
            self.repeat.clear()
            self.message.setText(i18n.pin_error(str(exc)))
            self.pin.setFocus()
            return
        self.saved = True
        self.accept()
