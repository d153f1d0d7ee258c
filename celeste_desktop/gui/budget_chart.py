"""A small bar chart of the data used per day over the last 30 days, against the data budget.

Each bar is one day's bytes on the wire, sent plus received (what the satellite plan bills and
what the budget counts). The reference lines, decided so that a bar reads against what limits
that day:

- a **daily budget** is drawn as a solid line: it is a hard limit, the sync stops for the day
  when it is reached, so a bar above it is a day that was stopped (or overridden);
- a **monthly budget** is drawn dashed as its even pace, the monthly budget divided by the days
  of the current plan period: a guide, not a limit. A day above it spent more than its share,
  which is fine as long as the month stays under budget;
- with both set, both lines show; with neither, no line, and the description says so.

Bars above the daily budget are red, bars above only the pace amber (the same accents as the
tray icon), others in the palette's highlight colour; text, axes and grid come from the
palette, so the chart follows the light or dark theme. The arrow keys, Home and End pick a day
(as a click does); the selected day is outlined and read out through the accessible
description, which always carries a text summary of the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from PySide6.QtCore import QDate, QEvent, QPoint, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QFontMetricsF,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from celeste_desktop.engine.budget import BudgetStatus
from celeste_desktop.store.records import UsageDay

__all__ = ["DAYS", "BudgetChart", "BudgetLine", "DayUsage", "budget_lines", "daily_series", "format_bytes"]

DAYS = 30
OVER_LIMIT = QColor("#d64541")  # the tray's "problem" red: readable on light and dark
OVER_PACE = QColor("#d99a1e")  # the tray's "paused" amber


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date
    sent: int
    received: int

    @property
    def used(self) -> int:
        return self.sent + self.received


@dataclass(frozen=True, slots=True)
class BudgetLine:
    bytes_per_day: int
    hard: bool  # True: the daily budget (a limit); False: the monthly budget's even pace (a guide)
    label: str  # short, for the legend
    description: str  # how it was worked out, for the summary


def format_bytes(nbytes: float) -> str:
    """Decimal units, as the satellite plan and the budget settings count: 1 MB = 1,000,000 B."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{nbytes:.0f} B"


def daily_series(usage: Sequence[UsageDay], today: date, days: int = DAYS) -> list[DayUsage]:
    """One entry per day for the ``days`` days ending ``today``, oldest first; days without
    traffic are zero, days outside the window are left out."""
    by_day = {entry.day: entry for entry in usage}
    series = []
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        entry = by_day.get(day)
        series.append(DayUsage(day, entry.bytes_sent if entry else 0, entry.bytes_received if entry else 0))
    return series


def budget_lines(status: BudgetStatus | None) -> list[BudgetLine]:
    """The reference lines for ``status`` (see the module docstring for the choice)."""
    if status is None:
        return []
    lines = []
    if status.daily_limit:
        daily = format_bytes(status.daily_limit)
        lines.append(BudgetLine(status.daily_limit, True, f"Daily budget {daily}", f"Daily budget {daily}"))
    if status.monthly_limit:
        period_days = max(1, (status.period.reset - status.period.start).days)
        pace = status.monthly_limit // period_days
        explained = (
            f"Monthly budget {format_bytes(status.monthly_limit)} ÷ {period_days} days = {format_bytes(pace)} a day"
        )
        lines.append(BudgetLine(pace, False, f"Monthly pace {format_bytes(pace)}/day", explained))
    return lines


@dataclass(frozen=True, slots=True)
class _LegendEntry:
    label: str
    color: QColor
    style: Qt.PenStyle | None  # None: a filled swatch (the bars); else a line sample
    x: float
    row: int
    mark: float  # width of the swatch or line sample


def _nice_step(span: float, ticks: int = 4) -> float:
    """A round axis step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` steps."""
    raw = max(span, 1.0) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


class BudgetChart(QWidget):
    """Usage per day, last 30 days, with the budget lines. Feed it with :meth:`set_usage`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._series: list[DayUsage] = []
        self._lines: list[BudgetLine] = []
        self._selected: int | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setAccessibleName("Data used per day, last 30 days")
        self.setMouseTracking(True)
        self._describe()

    # -- data ----------------------------------------------------------------------------------

    def set_usage(self, usage: Sequence[UsageDay], status: BudgetStatus | None, today: date) -> None:
        """Show ``usage`` (from ``StateDB.usage_between(today - 29 days, today)``) against
        ``status`` (``UsageTracker.status()``; None when unknown). ``today`` ends the window."""
        self._series = daily_series(usage, today)
        self._lines = budget_lines(status)
        if self._selected is not None:
            self._selected = min(self._selected, len(self._series) - 1)
        self._describe()
        self.update()

    def series(self) -> list[DayUsage]:
        return list(self._series)

    def lines(self) -> list[BudgetLine]:
        return list(self._lines)

    def selected_day(self) -> DayUsage | None:
        return None if self._selected is None else self._series[self._selected]

    def select(self, index: int | None) -> None:
        if index is not None and self._series:
            index = max(0, min(index, len(self._series) - 1))
        self._selected = index if self._series else None
        self._describe()
        self.update()

    # -- text for people and assistive technology ---------------------------------------------------

    def summary(self) -> str:
        """What the chart shows, in words (its accessible description)."""
        if not self._series:
            return "No data usage recorded yet."
        first, last = self._series[0], self._series[-1]
        total = sum(day.used for day in self._series)
        parts = [f"{self._date(first.day)} to {self._date(last.day)}: {format_bytes(total)} used in total"]
        busiest = max(self._series, key=lambda day: day.used)
        if busiest.used:
            parts.append(f"most on {self._date(busiest.day)}, {format_bytes(busiest.used)}")
        parts.append(f"today {format_bytes(last.used)}")
        text = "; ".join(parts) + "."
        if not self._lines:
            text += " No data budget set."
        for line in self._lines:
            over = sum(1 for day in self._series if day.used > line.bytes_per_day)
            days = f"{over} day{'s' if over != 1 else ''}"
            if line.hard:
                text += f" {line.description}: exceeded on {days}."
            else:
                text += f" {line.description} (a guide, not a limit): above it on {days}."
        selected = self.selected_day()
        if selected is not None:
            text += f" Selected: {self.day_text(selected)}"
        return text

    def day_text(self, day: DayUsage) -> str:
        return (
            f"{self._date(day.day)}: {format_bytes(day.used)} "
            f"({format_bytes(day.sent)} sent, {format_bytes(day.received)} received)."
        )

    def tooltip_at(self, point: QPointF | QPoint) -> str | None:
        index = self.index_at(point)
        return None if index is None else self.day_text(self._series[index])

    def _date(self, day: date) -> str:
        return self.locale().toString(QDate(day.year, day.month, day.day), "d MMM")

    def _describe(self) -> None:
        self.setAccessibleDescription(self.summary())

    # -- geometry (public so tests and tooltips share it) --------------------------------------------

    def plot_rect(self) -> QRectF:
        metrics = QFontMetricsF(self.font())
        gutter = max(metrics.horizontalAdvance(label) for _, label in self._ticks()) + metrics.averageCharWidth()
        rows = max(entry.row for entry in self._legend()) + 1
        top = metrics.height() * (rows + 1.0)  # the legend, then room for the top value label
        bottom = metrics.height() * 1.5  # the date labels
        right = metrics.averageCharWidth()
        return QRectF(gutter, top, max(1.0, self.width() - gutter - right), max(1.0, self.height() - top - bottom))

    def _legend(self) -> list[_LegendEntry]:
        """The legend's entries, placed left to right and wrapped onto more rows when narrow."""
        metrics = QFontMetricsF(self.font())
        swatch = metrics.ascent() * 0.8
        text = self.palette().color(QPalette.ColorRole.WindowText)
        wanted: list[tuple[str, QColor, Qt.PenStyle | None]] = [
            ("Used per day", self.palette().color(QPalette.ColorRole.Highlight), None)
        ]
        wanted += [
            (line.label, QColor(OVER_LIMIT) if line.hard else text,
             Qt.PenStyle.SolidLine if line.hard else Qt.PenStyle.DashLine)
            for line in self._lines
        ]  # fmt: skip
        placed: list[_LegendEntry] = []
        x, row = 0.0, 0
        for label, color, style in wanted:
            mark = swatch * (1 if style is None else 2)
            width = mark + metrics.averageCharWidth() + metrics.horizontalAdvance(label)
            if x and x + width > self.width():
                x, row = 0.0, row + 1
            placed.append(_LegendEntry(label, color, style, x, row, mark))
            x += width + metrics.averageCharWidth() * 3
        return placed

    def scale_max(self) -> float:
        """The value at the top of the axis: the highest bar or line, rounded up to a step."""
        highest = max([day.used for day in self._series] + [line.bytes_per_day for line in self._lines] + [1])
        step = _nice_step(highest)
        return math.ceil(highest / step) * step

    def value_y(self, nbytes: float) -> float:
        plot = self.plot_rect()
        return plot.bottom() - plot.height() * min(1.0, nbytes / self.scale_max())

    def bar_rect(self, index: int) -> QRectF:
        plot = self.plot_rect()
        slot = plot.width() / max(1, len(self._series))
        width = max(1.0, slot * 0.7)
        top = self.value_y(self._series[index].used)
        return QRectF(plot.left() + slot * index + (slot - width) / 2, top, width, plot.bottom() - top)

    def index_at(self, point: QPointF | QPoint) -> int | None:
        plot = self.plot_rect()
        x = float(point.x())
        if not self._series or not plot.left() <= x < plot.right():
            return None
        return min(len(self._series) - 1, int((x - plot.left()) / (plot.width() / len(self._series))))

    def bar_color(self, index: int) -> QColor:
        used = self._series[index].used
        if any(line.hard and used > line.bytes_per_day for line in self._lines):
            return QColor(OVER_LIMIT)
        if any(not line.hard and used > line.bytes_per_day for line in self._lines):
            return QColor(OVER_PACE)
        return self.palette().color(QPalette.ColorRole.Highlight)

    def _ticks(self) -> list[tuple[float, str]]:
        top = self.scale_max()
        step = _nice_step(top)
        count = round(top / step)
        return [(step * i, format_bytes(step * i) if i else "0") for i in range(count + 1)]

    # -- Qt ------------------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        metrics = QFontMetricsF(self.font())
        return QSize(round(metrics.averageCharWidth() * 72), round(metrics.height() * 13))

    def minimumSizeHint(self) -> QSize:
        metrics = QFontMetricsF(self.font())
        return QSize(round(metrics.averageCharWidth() * 40), round(metrics.height() * 7))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)  # crisp bars and grid
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        grid = palette.color(QPalette.ColorRole.Mid)
        metrics = QFontMetricsF(self.font())
        plot = self.plot_rect()
        painter.setFont(self.font())
        # Grid and value labels.
        for value, label in self._ticks():
            y = self.value_y(value)
            painter.setPen(QPen(grid, 1, Qt.PenStyle.DotLine if value else Qt.PenStyle.SolidLine))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text)
            width = metrics.horizontalAdvance(label)
            baseline = y + metrics.ascent() / 2 - metrics.descent() / 2
            painter.drawText(QPointF(plot.left() - width - metrics.averageCharWidth() / 2, baseline), label)
        # Bars.
        for index in range(len(self._series)):
            if self._series[index].used:
                painter.fillRect(self.bar_rect(index), self.bar_color(index))
        # Date labels, every 7 days counted back from today so today is always labelled.
        painter.setPen(text)
        for index in range(len(self._series) - 1, -1, -7):
            label = "Today" if index == len(self._series) - 1 else self._date(self._series[index].day)
            centre = self.bar_rect(index).center().x()
            width = metrics.horizontalAdvance(label)
            x = min(max(centre - width / 2, plot.left()), self.width() - width)
            painter.drawText(QPointF(x, plot.bottom() + metrics.ascent() + metrics.descent()), label)
        # Budget lines, above the bars.
        for line in self._lines:
            color = QColor(OVER_LIMIT) if line.hard else text
            pen = QPen(
                color, max(1.0, metrics.height() / 9), Qt.PenStyle.SolidLine if line.hard else Qt.PenStyle.DashLine
            )
            painter.setPen(pen)
            y = self.value_y(line.bytes_per_day)
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        self._paint_legend(painter, metrics, text)
        # The picked day, outlined.
        if self._selected is not None:
            outline = self.bar_rect(self._selected).adjusted(-2, -2, 2, 2)
            outline.setTop(min(outline.top(), plot.bottom() - metrics.height() / 2))
            painter.setPen(QPen(text, 1, Qt.PenStyle.SolidLine))
            painter.drawRect(outline)
        if self.hasFocus():
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 1, Qt.PenStyle.DotLine))
            painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -1.5, -1.5))

    def _paint_legend(self, painter: QPainter, metrics: QFontMetricsF, text: QColor) -> None:
        swatch = metrics.ascent() * 0.8
        for entry in self._legend():
            baseline = metrics.ascent() + metrics.height() * entry.row
            if entry.style is None:
                painter.fillRect(QRectF(entry.x, baseline - swatch, swatch, swatch), entry.color)
            else:
                painter.setPen(QPen(entry.color, max(1.0, metrics.height() / 9), entry.style))
                middle = baseline - swatch / 2
                painter.drawLine(QPointF(entry.x, middle), QPointF(entry.x + entry.mark, middle))
            painter.setPen(text)
            painter.drawText(QPointF(entry.x + entry.mark + metrics.averageCharWidth(), baseline), entry.label)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._series:
            super().keyPressEvent(event)
            return
        last = len(self._series) - 1
        key = Qt.Key(event.key())
        if self._selected is None:  # the first key lands on today (or the first day for Home)
            targets = {Qt.Key.Key_Left: last, Qt.Key.Key_Right: last, Qt.Key.Key_Home: 0, Qt.Key.Key_End: last}
        else:
            current = self._selected
            targets = {Qt.Key.Key_Left: current - 1, Qt.Key.Key_Right: current + 1, Qt.Key.Key_Home: 0,
                       Qt.Key.Key_End: last}  # fmt: skip
        if key not in targets:
            super().keyPressEvent(event)
            return
        self.select(targets[key])
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.index_at(event.position())
        if index is not None:
            self.select(index)
        super().mousePressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        if self._selected is None and self._series:
            self.select(len(self._series) - 1)  # keyboard users start on today
        super().focusInEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.update()
        super().focusOutEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            tip = self.tooltip_at(event.pos())
            if tip:
                QToolTip.showText(event.globalPos(), tip, self)
            else:
                QToolTip.hideText()
            return True
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.LocaleChange, QEvent.Type.FontChange):
            self._describe()
            self.update()
        return super().event(event)
