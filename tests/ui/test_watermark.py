"""The watermark overlay never takes input: click-through, no focus, always on top."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from ui.mainthread import MainThread
from ui.watermark import WatermarkOverlay


def test_the_watermark_is_click_through_and_never_focused(qtbot: QtBot) -> None:
    overlay = WatermarkOverlay(MainThread())
    overlay.show_watermark("t1 · PC-0420 · 2026-01-31 09:00", 0.08)
    qtbot.waitUntil(lambda: bool(overlay.windows) and overlay.windows[0].isVisible())
    window = overlay.windows[0]
    flags = window.windowFlags()
    assert flags & Qt.WindowType.WindowTransparentForInput
    assert flags & Qt.WindowType.WindowDoesNotAcceptFocus
    assert flags & Qt.WindowType.WindowStaysOnTopHint
    assert window.focusPolicy() == Qt.FocusPolicy.NoFocus
    assert not window.isActiveWindow()
    assert window.text.startswith("t1 · PC-0420")
    overlay.hide_watermark()
    qtbot.waitUntil(lambda: not window.isVisible())
