"""Takes the README screenshots (in Chinese) of the tray menu, each prompt and the lock overlay.

    .venv/bin/python tests/ui/x11/make_screenshots.py [--out docs/screenshots]

Runs Xvfb (1920x1080) with trayer as the tray host, shows the real widgets of ui/ one after the
other in a child process, and grabs the screen with `import -window root`, cropped to the widget.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

MARGIN = 24


def child(out: Path) -> int:
    """Runs on the Xvfb display: shows each widget and screenshots it."""
    from PySide6.QtCore import QPoint, QRect, QTimer
    from PySide6.QtWidgets import QApplication, QWidget

    from guard.app.session import AgentStatus, UnlockResult
    from guard.model import Action, Channel, FindingSummary
    from guard.pipeline.prompt import PromptRequest
    from ui import i18n
    from ui.lock import LockOverlay, PinSetupDialog
    from ui.mainthread import MainThread
    from ui.prompt import JustifyDialog, QtPrompter
    from ui.tray import QuitDialog, Tray

    app = QApplication(["teller-guard-agent"])
    app.setQuitOnLastWindowClosed(False)
    i18n.install_translator(app, "zh_CN")
    main = MainThread()
    prompter = QtPrompter(main)
    card = FindingSummary(type="BANK_CARD", count=1, masked=["622202*********0128"],
                          hashes=["a" * 16])
    rid = FindingSummary(type="CN_RESIDENT_ID", count=1, masked=["110***********4514"],
                         hashes=["b" * 16])
    mobile = FindingSummary(type="CN_MOBILE", count=2, masked=["138****5678", "139****0021"],
                            hashes=["c" * 16, "d" * 16])
    steps: list[tuple[str, object]] = []

    def shot(name: str, rect: QRect) -> None:
        r = rect.adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN).intersected(QRect(0, 0, 1920, 1080))
        path = out / f"{name}.png"
        subprocess.run(["import", "-window", "root", "-crop",
                        f"{r.width()}x{r.height()}+{r.x()}+{r.y()}", "+repage", str(path)],
                       check=True)
        print(f"wrote {path}", flush=True)

    def frame(w: QWidget) -> QRect:
        return QRect(w.mapToGlobal(QPoint(0, 0)), w.size())

    tray = Tray(lambda _s: False)
    tray.set_status(AgentStatus(
        state="protected", watchers={"clipboard": "running", "idle": "running"},
        last_event="CLIPBOARD_COPY redacted", queue_depth=0, policy_version="default-2026.1",
        collector_reachable=True))
    tray.show()

    def tray_menu() -> None:
        icon = tray.icon.geometry()
        hint = tray.menu.sizeHint()
        tray.menu.popup(QPoint(icon.right() - hint.width(), icon.top() - hint.height() - 4))
        QTimer.singleShot(700, lambda: (shot("tray-menu", frame(tray.menu).united(icon)),
                                        tray.menu.hide()))

    def toast_copy() -> None:
        prompter.notify(PromptRequest(action=Action.NOTIFY, channel=Channel.CLIPBOARD,
                                      kind="redacted", findings=(card, mobile),
                                      detail={"source_app": "notepad"}))

    def toast_shot(name: str) -> None:
        t = prompter.toast()
        if t is not None:
            shot(name, frame(t))
            t.dismiss()

    def toast_idle() -> None:
        prompter.notify(PromptRequest(action=Action.LOCK, channel=Channel.IDLE, kind="idle_warn",
                                      timeout_s=60))

    dialogs: list[QWidget] = []

    def justify_typed() -> None:
        d = JustifyDialog(PromptRequest(
            action=Action.JUSTIFY, channel=Channel.SCREEN, kind="hotkey", findings=(rid,),
            timeout_s=45, min_reason_len=4, reasons=("业务办理需要", "客户本人要求"),
            detail={"source_app": "core-banking"}))
        d.show_prompt()
        d.reason_edit.setText("对")
        d._on_typed("对")
        dialogs.append(d)

    def dialog_shot(name: str) -> None:
        d = dialogs.pop()
        shot(name, frame(d))
        d.reject()

    overlay = LockOverlay(main)
    overlay.set_unlocker(lambda _c: UnlockResult(False, 20.0, "wrong_credential"))

    def lock() -> None:
        overlay.show_lock()

    def lock_wrong() -> None:
        panel = overlay.panel()
        if panel is not None and panel.edit is not None:
            panel.edit.setText("000000")
            panel.edit.returnPressed.emit()

    def lock_shot() -> None:
        shot("lock-overlay", QRect(MARGIN, MARGIN, 1920 - 2 * MARGIN, 1080 - 2 * MARGIN))
        overlay._hide()

    def pin() -> None:
        d = PinSetupDialog(lambda _p: None)
        d.show()
        d.pin.setText("135790")
        dialogs.append(d)

    def quit_dialog() -> None:
        tray.ask_quit()
        if tray.quit_dialog is not None:
            tray.quit_dialog.secret.setText("guess")
            tray.quit_dialog._check()  # the answer arrives from its worker thread
            dialogs.append(tray.quit_dialog)

    steps = [
        (tray_menu, 1500), (toast_copy, 800), (lambda: toast_shot("toast-redacted"), 300),
        (toast_idle, 800), (lambda: toast_shot("toast-idle-warning"), 300),
        (justify_typed, 800), (lambda: dialog_shot("justify-typed"), 300),
        (lock, 800), (lock_wrong, 1200), (lock_shot, 300),
        (pin, 800), (lambda: dialog_shot("pin-setup"), 300),
        (quit_dialog, 800), (lambda: dialog_shot("quit-it-only"), 300),
        (app.quit, 0),
    ]
    _ = QuitDialog  # the quit dialog is reached through the tray, as a teller would
    delay = 1500
    for fn, wait in steps:
        QTimer.singleShot(delay, fn)  # type: ignore[arg-type]
        delay += wait
    return app.exec()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child:
        return child(args.out)
    from harness import xserver

    with xserver() as xs:
        xs.run("xsetroot", "-solid", "#5b7fa6")
        env = {**xs.env, "TELLER_GUARD_LANG": "zh_CN"}
        result = subprocess.run([sys.executable, __file__, "--child", "--out", str(args.out)],
                                env=env, cwd=ROOT, timeout=120, check=False)
        return result.returncode


if __name__ == "__main__":
    os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", "disabled:")
    sys.exit(main())
