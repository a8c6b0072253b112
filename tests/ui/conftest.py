"""Fixtures of the UI tests: Qt runs offscreen (dialog tests); X11 end-to-end tests start their own
Xvfb, tray host and agent process (tests/ui/x11/)."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # dialog tests; the X11 tests set xcb
os.environ["DBUS_SESSION_BUS_ADDRESS"] = "disabled:"
os.environ["TELLER_GUARD_LANG"] = "en"  # tests that need Chinese install it

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QApplication

from ui import i18n
from ui.mainthread import MainThread


@pytest.fixture
def main_thread(qapp: QApplication) -> MainThread:
    return MainThread()


@pytest.fixture
def zh_cn(qapp: QApplication) -> Iterator[None]:
    """The Chinese translation installed for one test."""
    translator = i18n.install_translator(qapp, "zh_CN")
    yield
    if translator is not None:
        QCoreApplication.removeTranslator(translator)
