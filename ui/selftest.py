"""`teller-guard-agent --selftest`: the core's checks plus the agent's Qt parts, with no window.

Runs every check of `guard.commands.selftest` (the desktop backend is required: an agent without
one protects nothing) and adds what only the agent uses: the Qt platform plugin, the compiled
translations loaded by Qt for each language, and the system tray. Prints the same report and
returns its exit code (0 only when nothing failed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from guard.commands import selftest as core
from guard.commands.selftest import Check, CheckFailed, CheckSkipped, attempt

# A string every build translates: a missing or stale zh_CN translation shows as English here.
PROBE_CONTEXT, PROBE_SOURCE = "Findings", "Resident ID number"


def run(data_dir: Path | None = None) -> int:
    checks = core.run_checks(data_dir=data_dir, require_desktop=True)
    checks += qt_checks()
    return core.report(checks, sys.stdout, title="teller-guard-agent selftest")


def qt_checks() -> list[Check]:
    out = [attempt("qt translations", check_qt_translations)]
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and \
            not os.environ.get("QT_QPA_PLATFORM") and not os.environ.get("WAYLAND_DISPLAY"):
        # Qt aborts the process when its xcb plugin finds no display: report it instead
        out.append(Check("qt platform", core.Status.FAIL,
                         "no display (DISPLAY is not set): the agent runs in a teller's desktop"))
        return out
    out.append(attempt("qt platform", check_qt_platform))
    out.append(attempt("system tray", check_tray))
    return out


def check_qt_translations() -> str:
    from PySide6.QtCore import QTranslator

    from ui import i18n

    loaded = []
    for language in core.LANGUAGES:
        path = i18n.qm_path(language)
        translator = QTranslator()
        if not translator.load(path):
            raise CheckFailed(f"Qt cannot load {path}; rebuild it with "
                              f"scripts/build_ui_resources.py")
        loaded.append(language)
        if language == "zh_CN":
            text = translator.translate(PROBE_CONTEXT, PROBE_SOURCE)
            if not text or not any("\u4e00" <= ch <= "\u9fff" for ch in text):
                raise CheckFailed(f"{path} does not translate {PROBE_SOURCE!r} into Chinese")
    return "Qt loads " + ", ".join(loaded)


def _app() -> object:
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication(["teller-guard-agent", "--selftest"])


def check_qt_platform() -> str:
    from PySide6.QtGui import QGuiApplication

    _app()
    screen = QGuiApplication.primaryScreen()
    size = screen.size() if screen is not None else None
    where = f"{size.width()}x{size.height()}" if size is not None else "no screen"
    return f"platform plugin {QGuiApplication.platformName()}, {where}"


def check_tray() -> str:
    from PySide6.QtWidgets import QSystemTrayIcon

    _app()
    if not QSystemTrayIcon.isSystemTrayAvailable():
        raise CheckSkipped("no system tray on this desktop now (the agent's icon appears when "
                           "a tray host runs)")
    return "a system tray is available"
