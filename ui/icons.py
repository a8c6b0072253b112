"""The tray state icons: a shield whose colour and sign tell protected, degraded and alert apart.

The committed PNGs in `resources/icons/` are drawn by `draw_state_icon` (run
`scripts/build_ui_resources.py` to redraw them); at run time `app_icon` only loads them, falling
back to drawing when a file is missing so the tray never shows an empty square.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap
from teller_guard_resources import resource

State = Literal["protected", "degraded", "alert"]
STATES: tuple[State, ...] = ("protected", "degraded", "alert")
SIZES = (16, 22, 32, 48, 64, 128)

_COLOURS: dict[str, tuple[str, str]] = {
    # fill, outline
    "protected": ("#2e7d32", "#1b5e20"),
    "degraded": ("#f2a900", "#a66f00"),
    "alert": ("#d32f2f", "#8e1b1b"),
}


def icon_path(state: str, size: int) -> str:
    """Where the PNG of `state` at `size` pixels is kept."""
    return str(resource("icons", f"tray-{state}-{size}.png"))


def draw_state_icon(state: str, size: int) -> QPixmap:
    """Draw the shield for `state` at `size`×`size` pixels (needs a QGuiApplication)."""
    fill, outline = _COLOURS[state]
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = float(size)
    shield = QPainterPath()
    shield.moveTo(s * 0.5, s * 0.04)
    shield.lineTo(s * 0.90, s * 0.18)
    shield.cubicTo(s * 0.90, s * 0.62, s * 0.72, s * 0.84, s * 0.5, s * 0.96)
    shield.cubicTo(s * 0.28, s * 0.84, s * 0.10, s * 0.62, s * 0.10, s * 0.18)
    shield.closeSubpath()
    p.setPen(QPen(QColor(outline), max(1.0, s / 24)))
    p.setBrush(QBrush(QColor(fill)))
    p.drawPath(shield)
    pen = QPen(QColor("#ffffff"), max(2.0, s * 0.11))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    if state == "protected":
        check = QPainterPath()
        check.moveTo(s * 0.31, s * 0.50)
        check.lineTo(s * 0.45, s * 0.64)
        check.lineTo(s * 0.70, s * 0.36)
        p.drawPath(check)
    elif state == "degraded":
        p.drawLine(QPointF(s * 0.5, s * 0.27), QPointF(s * 0.5, s * 0.56))
        p.setBrush(QBrush(QColor("#ffffff")))
        p.setPen(Qt.PenStyle.NoPen)
        r = max(1.2, s * 0.065)
        p.drawEllipse(QRectF(s * 0.5 - r, s * 0.72 - r, 2 * r, 2 * r))
    else:
        p.drawLine(QPointF(s * 0.34, s * 0.32), QPointF(s * 0.66, s * 0.64))
        p.drawLine(QPointF(s * 0.66, s * 0.32), QPointF(s * 0.34, s * 0.64))
    p.end()
    return pix


def app_icon(state: str) -> QIcon:
    """The icon for `state` with every committed size (drawn when the files are missing)."""
    icon = QIcon()
    for size in SIZES:
        pix = QPixmap(icon_path(state, size))
        if pix.isNull():
            pix = draw_state_icon(state, size)
        icon.addPixmap(pix)
    return icon
