"""The screen watermark: a faint, click-through, always-on-top overlay (the core's WatermarkPort).

One frameless, translucent window per screen draws the text (teller login, terminal, time)
tiled diagonally. It is transparent for input (`WindowTransparentForInput`), never activated and
never focused (`WindowDoesNotAcceptFocus`, `WA_ShowWithoutActivating`): clicks and keys go to the
windows below it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

from ui.mainthread import MainThread

FLAGS = (Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint
         | Qt.WindowType.Tool | Qt.WindowType.WindowTransparentForInput
         | Qt.WindowType.WindowDoesNotAcceptFocus | Qt.WindowType.X11BypassWindowManagerHint)


class WatermarkWindow(QWidget):
    """The watermark over one screen."""

    def __init__(self) -> None:
        super().__init__(None, FLAGS)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.text = ""
        self.opacity = 0.08

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        color = QColor(80, 80, 80)
        color.setAlphaF(self.opacity)
        painter.setPen(color)
        painter.setFont(QFont("Noto Sans CJK SC", 16))
        painter.rotate(-20)
        step_x, step_y = 520, 160
        for y in range(-self.height(), self.height() * 2, step_y):
            for x in range(-self.width(), self.width() * 2, step_x):
                painter.drawText(x, y, self.text)
        painter.end()


class WatermarkOverlay:
    """`WatermarkPort` with Qt: any thread calls it, the windows live on the Qt thread."""

    def __init__(self, main: MainThread) -> None:
        self._main = main
        self._windows: list[WatermarkWindow] = []

    @property
    def windows(self) -> list[WatermarkWindow]:
        return list(self._windows)

    def show_watermark(self, text: str, opacity: float) -> None:
        self._main.run_on_main(lambda: self._show(text, opacity))

    def hide_watermark(self) -> None:
        self._main.run_on_main(self._hide)

    def _show(self, text: str, opacity: float) -> None:
        screens = QGuiApplication.screens()
        while len(self._windows) < len(screens):
            self._windows.append(WatermarkWindow())
        for window, screen in zip(self._windows, screens, strict=False):
            window.text, window.opacity = text, opacity
            window.setGeometry(screen.geometry())
            window.show()
            window.raise_()
            window.update()

    def _hide(self) -> None:
        for window in self._windows:
            window.hide()
