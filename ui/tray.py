"""The tray icon and its menu: state at a glance, status lines, lock now, about, quit (IT only).

The icon is a shield: green with a check (protected), amber with "!" (degraded: a watcher is
unavailable or events are not reaching the collector), red with "×" (alert). The menu shows the
status lines the agent reports; nothing in it turns protection off, and quitting asks for the IT
credential (`Agent.verify_it_credential`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from guard.app.session import AgentStatus
from ui import i18n
from ui.icons import app_icon
from ui.prompt import centre_on_primary

log = logging.getLogger(__name__)

VERSION = "0.1.0"


class QuitDialog(QDialog):
    """Asks for the IT credential before the agent may quit; wrong secrets are refused.

    The check runs on a worker thread: it is an scrypt computation, or beside the machine
    service a round trip to it, and the dialog keeps painting meanwhile."""

    _checked = Signal(bool)  # emitted by the worker thread, delivered on the Qt thread

    def __init__(self, verify: Callable[[str], bool], parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Dialog | Qt.WindowType.WindowStaysOnTopHint)
        self._verify = verify
        self.verified = False
        self.checking = False
        self._checked.connect(self._show_check)
        self.setWindowTitle(self.tr("Quit Teller Guard"))
        self.setWindowIcon(app_icon("degraded"))
        self.setMinimumWidth(400)
        v = QVBoxLayout(self)
        v.setContentsMargins(20, 16, 20, 16)
        text = QLabel(self.tr("Quitting stops the protection of customer data on this PC. Only IT "
                              "staff may do it: enter the IT credential."))
        text.setWordWrap(True)
        v.addWidget(text)
        row = QHBoxLayout()
        label = QLabel(self.tr("IT &credential:"))
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        label.setBuddy(self.secret)
        row.addWidget(label)
        row.addWidget(self.secret, 1)
        v.addLayout(row)
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setStyleSheet("#message { color: #b00020; }")
        v.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.quit_button = QPushButton(self.tr("&Quit"))
        self.quit_button.setAutoDefault(False)
        self.cancel_button = QPushButton(self.tr("&Cancel"))
        self.cancel_button.setDefault(True)
        buttons.addWidget(self.quit_button)
        buttons.addWidget(self.cancel_button)
        v.addLayout(buttons)
        self.quit_button.clicked.connect(self._check)
        self.cancel_button.clicked.connect(self.reject)
        self.secret.returnPressed.connect(self._check)
        self.setTabOrder(self.secret, self.quit_button)
        self.setTabOrder(self.quit_button, self.cancel_button)
        centre_on_primary(self)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Enter in the credential field checks it (returnPressed); without this the dialog's
        # default button (cancel) would take the same key press and close the dialog, so a
        # wrong credential looked like nothing happened.
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and (self.checking or self.focusWidget() is self.secret)):
            event.accept()
            return
        super().keyPressEvent(event)

    def _check(self) -> None:
        if self.checking:
            return
        secret = self.secret.text()
        self.secret.clear()
        if not secret:
            self._show_check(False)
            return
        self.checking = True
        # read-only, not disabled: a disabled field would pass the focus (and the Enter key
        # being handled) on to the default button, cancel
        self.secret.setReadOnly(True)
        verify, checked = self._verify, self._checked

        def work() -> None:
            try:
                ok = bool(verify(secret))
            except Exception:  # a failing check refuses; the agent logs and records it
                log.exception("the IT credential check failed")
                ok = False
            checked.emit(ok)

        threading.Thread(target=work, name="it-credential-check", daemon=True).start()

    def _show_check(self, ok: bool) -> None:
        self.checking = False
        self.secret.setReadOnly(False)
        if ok:
            self.verified = True
            self.accept()
            return
        self.message.setText(self.tr("That is not the IT credential."))
        self.secret.setFocus()


class Tray(QObject):
    """The tray icon with its menu. Qt thread only; `set_status` is fed through the gateway."""

    lock_requested = Signal()
    quit_confirmed = Signal()

    def __init__(self, verify_it_credential: Callable[[str], bool]) -> None:
        super().__init__()
        self._verify = verify_it_credential
        self.state = "protected"
        self.icon = QSystemTrayIcon()
        self.menu = QMenu()
        self.status_actions: list[QAction] = []
        self._status_anchor = self.menu.addSeparator()
        self.lock_action = self.menu.addAction(self.tr("&Lock now"))
        self.lock_action.setShortcut("Ctrl+Alt+L")
        self.lock_action.triggered.connect(self.lock_requested.emit)
        self.about_action = self.menu.addAction(self.tr("&About Teller Guard"))
        self.about_action.triggered.connect(self.show_about)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction(self.tr("&Quit (IT only)…"))
        self.quit_action.triggered.connect(self.ask_quit)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.quit_dialog: QuitDialog | None = None
        self.about_box: QMessageBox | None = None
        self.set_status(AgentStatus(state="protected"))

    def status_lines(self, status: AgentStatus) -> list[str]:
        """The menu's status lines, in the teller's language."""
        state = {
            "protected": self.tr("Protected"),
            "degraded": self.tr("Degraded: some protection is not working"),
            "alert": self.tr("Alert"),
        }.get(status.state, status.state)
        lines = [self.tr("Status: {state}").format(state=state)]
        for name, value in sorted(status.watchers.items()):
            if value == "running":
                shown = self.tr("running")
            elif value.startswith("unavailable"):
                reason = value.partition(":")[2].strip()
                shown = (self.tr("unavailable ({reason})").format(reason=reason) if reason
                         else self.tr("unavailable"))
            else:
                shown = value
            lines.append(self.tr("{name}: {state}").format(name=i18n.watcher(name), state=shown))
        last = i18n.last_event(status.last_event) if status.last_event else self.tr("none")
        lines.append(self.tr("Last event: {event}").format(event=last))
        lines.append(self.tr("Events waiting to be sent: {n}").format(n=status.queue_depth))
        version = status.policy_version or self.tr("unknown")
        lines.append(self.tr("Policy version: {v}").format(v=version))
        reach = {True: self.tr("reachable"), False: self.tr("not reachable"),
                 None: self.tr("not configured")}
        lines.append(self.tr("Collector: {state}").format(state=reach[status.collector_reachable]))
        return lines

    def show(self) -> None:
        self.icon.show()

    def set_status(self, status: AgentStatus) -> None:
        """Show `status`: icon, tooltip and the menu's status lines (Qt thread)."""
        self.state = status.state
        self.icon.setIcon(app_icon(status.state))
        lines = self.status_lines(status)
        self.icon.setToolTip(self.tr("Teller Guard") + "\n" + "\n".join(lines[:1]))
        for action in self.status_actions:
            self.menu.removeAction(action)
        self.status_actions = []
        for line in lines:
            action = QAction(line, self.menu)
            action.setEnabled(False)
            self.menu.insertAction(self._status_anchor, action)
            self.status_actions.append(action)

    def status_texts(self) -> list[str]:
        return [a.text() for a in self.status_actions]

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.menu.popup(self.icon.geometry().center())

    def show_about(self) -> None:
        box = QMessageBox()
        box.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint)
        box.setIconPixmap(app_icon("protected").pixmap(64, 64))
        box.setWindowTitle(self.tr("About Teller Guard"))
        box.setText(self.tr("Teller Guard {version}").format(version=VERSION))
        box.setInformativeText(self.tr(
            "Protects customer data at the counter: it checks what you copy, warns before risky "
            "actions and locks the PC when you step away. Questions: ask your branch IT staff."))
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        self.about_box = box
        box.open()

    def ask_quit(self) -> None:
        dialog = QuitDialog(self._verify)
        self.quit_dialog = dialog

        def done(result: int) -> None:
            if dialog.verified:
                self.quit_confirmed.emit()

        dialog.finished.connect(done)
        dialog.open()
