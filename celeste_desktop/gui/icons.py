"""App and tray-state icons: loaded from ``resources/icons`` when packaged, drawn with QPainter otherwise.

Each tray state has its own silhouette *and* colour, so it reads at a glance for people who
cannot tell the colours apart and on monochrome panels:

    idle      green filled circle with a tick
    syncing   blue filled circle with a circular arrow
    paused    amber rounded square with two bars
    problem   red triangle with an exclamation mark
    offline   grey hollow ring crossed by a slash

Every glyph has a thin dark outline and white inner strokes so it stays legible on light and
dark panels alike. Icon files, when present, override the drawings: ``celeste.png`` or
``celeste-<size>.png`` (or ``celeste.svg``) for the app, ``tray-<state>.png`` or
``tray-<state>-<size>.png`` (or ``.svg``) for a state.
"""

from __future__ import annotations

import enum
import math
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF


class TrayState(enum.StrEnum):
    IDLE = "idle"
    SYNCING = "syncing"
    PAUSED = "paused"
    PROBLEM = "problem"
    OFFLINE = "offline"


# Semantic accents chosen to keep contrast against both light and dark panels.
STATE_COLOURS: dict[TrayState, str] = {
    TrayState.IDLE: "#2e9d55",
    TrayState.SYNCING: "#2f7fd8",
    TrayState.PAUSED: "#d99a1e",
    TrayState.PROBLEM: "#d64541",
    TrayState.OFFLINE: "#8a8f98",
}
TRAY_SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 128)
APP_SIZES = (16, 24, 32, 48, 64, 128, 256)
_OUTLINE = QColor(0, 0, 0, 120)
_GLYPH = QColor("#ffffff")


def icon_dirs() -> tuple[Path, ...]:
    """Folders that may hold packaged icons, most specific first (only those that exist)."""
    package = Path(__file__).resolve().parent.parent
    candidates: list[Path] = []
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller unpacks data files here
    if bundle:
        candidates.append(Path(bundle) / "resources" / "icons")
    if getattr(sys, "frozen", False):
        candidates.append(Path(sys.executable).resolve().parent / "resources" / "icons")
    candidates += [package / "resources" / "icons", package.parent / "resources" / "icons"]
    return tuple(folder for folder in candidates if folder.is_dir())


def state_icon(state: TrayState, *, search: Sequence[Path] | None = None) -> QIcon:
    """The tray icon for ``state``; ``search`` overrides :func:`icon_dirs` (tests, support rigs)."""
    loaded = _load_files(f"tray-{state.value}", icon_dirs() if search is None else search)
    return loaded if loaded is not None else _drawn(lambda painter, size: _draw_state(painter, size, state), TRAY_SIZES)


def app_icon(*, search: Sequence[Path] | None = None) -> QIcon:
    """The application icon (window, taskbar, dock, notifications)."""
    loaded = _load_files("celeste", icon_dirs() if search is None else search)
    return loaded if loaded is not None else _drawn(_draw_app, APP_SIZES)


def _load_files(stem: str, folders: Iterable[Path]) -> QIcon | None:
    """Every ``<stem>.png`` / ``<stem>-<N>.png`` in the first folder that has any; else ``<stem>.svg``."""
    pattern = re.compile(rf"^{re.escape(stem)}(?:[-_]\d+(?:x\d+)?)?\.png$", re.IGNORECASE)
    for folder in folders:
        icon = QIcon()
        for file in sorted(folder.iterdir()):
            if pattern.match(file.name):
                pixmap = QPixmap(str(file))
                if not pixmap.isNull():
                    icon.addPixmap(pixmap)
        if not icon.isNull():
            return icon
        svg = folder / f"{stem}.svg"
        if svg.is_file():
            # QIcon accepts an SVG only through the svg icon engine plugin: check it rendered.
            candidate = QIcon(str(svg))
            if not candidate.pixmap(32, 32).isNull():
                return candidate
    return None


def _drawn(draw: Callable[[QPainter, float], None], sizes: Iterable[int]) -> QIcon:
    icon = QIcon()
    for size in sizes:
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            draw(painter, float(size))
        finally:
            painter.end()
        icon.addPixmap(pixmap)
    return icon


def _outline_pen(size: float) -> QPen:
    return QPen(_OUTLINE, max(1.0, size / 20))


def _glyph_pen(size: float, colour: QColor = _GLYPH) -> QPen:
    pen = QPen(colour, max(1.5, size * 0.11))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _point(size: float, x: float, y: float) -> QPointF:
    return QPointF(size * x, size * y)


def _draw_state(painter: QPainter, size: float, state: TrayState) -> None:
    colour = QColor(STATE_COLOURS[state])
    margin = max(0.5, size * 0.06)
    body = QRectF(margin, margin, size - 2 * margin, size - 2 * margin)
    painter.setPen(_outline_pen(size))
    painter.setBrush(QBrush(colour))
    if state is TrayState.IDLE:
        painter.drawEllipse(body)
        painter.setPen(_glyph_pen(size))
        painter.drawPolyline(QPolygonF([_point(size, 0.29, 0.52), _point(size, 0.44, 0.67), _point(size, 0.72, 0.36)]))
    elif state is TrayState.SYNCING:
        painter.drawEllipse(body)
        _draw_circular_arrow(painter, size)
    elif state is TrayState.PAUSED:
        painter.drawRoundedRect(body, size * 0.18, size * 0.18)
        painter.setPen(_glyph_pen(size))
        for x in (0.38, 0.62):
            painter.drawLine(_point(size, x, 0.30), _point(size, x, 0.70))
    elif state is TrayState.PROBLEM:
        triangle = QPainterPath()
        triangle.moveTo(_point(size, 0.5, 0.06))
        triangle.lineTo(_point(size, 0.96, 0.90))
        triangle.lineTo(_point(size, 0.04, 0.90))
        triangle.closeSubpath()
        painter.drawPath(triangle)
        painter.setPen(_glyph_pen(size))
        painter.drawLine(_point(size, 0.5, 0.36), _point(size, 0.5, 0.60))
        painter.drawPoint(_point(size, 0.5, 0.76))
    else:  # OFFLINE: hollow, so the silhouette differs from every filled state
        ring = body.adjusted(size * 0.08, size * 0.08, -size * 0.08, -size * 0.08)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for pen in (_glyph_pen(size * 1.6, _OUTLINE), _glyph_pen(size * 1.2, colour)):
            painter.setPen(pen)
            painter.drawEllipse(ring)
            painter.drawLine(_point(size, 0.22, 0.22), _point(size, 0.78, 0.78))


def _draw_circular_arrow(painter: QPainter, size: float) -> None:
    radius = size * 0.25
    centre = QPointF(size / 2, size / 2)
    start_degrees, span_degrees = 90.0, 270.0  # Qt angles run counter-clockwise from 3 o'clock
    painter.setPen(_glyph_pen(size))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    arc = QRectF(centre.x() - radius, centre.y() - radius, 2 * radius, 2 * radius)
    painter.drawArc(arc, int(start_degrees * 16), int(span_degrees * 16))
    end = math.radians(start_degrees + span_degrees)
    tip = QPointF(centre.x() + radius * math.cos(end), centre.y() - radius * math.sin(end))
    # Tangent of a counter-clockwise arc at angle a, in screen coordinates (y grows downward).
    tangent = QPointF(-math.sin(end), -math.cos(end))
    normal = QPointF(-tangent.y(), tangent.x())
    head = size * 0.16
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QBrush(_GLYPH))
    painter.drawPolygon(QPolygonF([tip + tangent * head, tip + normal * (head * 0.8), tip - normal * (head * 0.8)]))


def _draw_app(painter: QPainter, size: float) -> None:
    margin = size * 0.04
    body = QRectF(margin, margin, size - 2 * margin, size - 2 * margin)
    painter.setPen(_outline_pen(size))
    painter.setBrush(QBrush(QColor("#123a63")))
    painter.drawRoundedRect(body, size * 0.2, size * 0.2)
    # A four-point star (celestial) over a wave (the sea).
    star = QPainterPath()
    cx, cy, outer, inner = size * 0.5, size * 0.40, size * 0.26, size * 0.07
    for index in range(8):
        angle = math.pi / 2 + index * math.pi / 4
        reach = outer if index % 2 == 0 else inner
        point = QPointF(cx + reach * math.cos(angle), cy - reach * math.sin(angle))
        if index == 0:
            star.moveTo(point)
        else:
            star.lineTo(point)
    star.closeSubpath()
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QBrush(_GLYPH))
    painter.drawPath(star)
    wave = QPainterPath(_point(size, 0.18, 0.78))
    wave.cubicTo(_point(size, 0.34, 0.66), _point(size, 0.50, 0.90), _point(size, 0.66, 0.78))
    wave.cubicTo(_point(size, 0.74, 0.72), _point(size, 0.80, 0.74), _point(size, 0.84, 0.76))
    painter.setPen(_glyph_pen(size * 0.8, QColor("#7cc4f2")))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawPath(wave)
