"""Active transfers: one row per file in flight, with its own progress bar.

Rows appear on ``FileStarted``, move on ``FileProgress`` and leave shortly after ``FileDone`` or
``FileFailed`` (they linger a moment so a fast file is still seen). The model takes a whole
batch of events at once and writes each changed cell once, so thousands of small files cost
the window a few calls per tick, not a few per file.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QLinearGradient, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QTreeView,
    QWidget,
)

from celeste_desktop.domain.models import ActionKind
from celeste_desktop.domain.rules import format_size
from celeste_desktop.engine.events import Event, FileDone, FileFailed, FileProgress, FileStarted, JobFinished

Index = QModelIndex | QPersistentModelIndex
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1  # float 0..1 in the Progress column
LINGER_S = 1.5  # a finished row stays this long


class Column(enum.IntEnum):
    FILE = 0
    PROGRESS = 1
    SIZE = 2
    STATUS = 3


HEADERS = ("File", "Progress", "Size", "Status")
_KIND_WORDS = {
    ActionKind.UPLOAD: "Copying",
    ActionKind.RELOCATE: "Moving",
    ActionKind.REGISTER: "Registering",
    ActionKind.DELETE: "Marking deleted",
    ActionKind.SKIP: "Skipping",
}


@dataclass
class Transfer:
    item_id: str
    path: str
    size: int
    kind: ActionKind
    phase: str = ""
    fraction: float = 0.0
    status: str = "Starting"
    message: str = ""
    finished_at: float | None = None
    failed: bool = False


class TransfersModel(QStandardItemModel):
    """The files in flight; ``apply`` a batch of events, ``sweep`` finished rows away.

    The cells live in C++ (a ``QStandardItemModel``), written once per change. A model written
    in Python answers every ``rowCount``/``data`` call of the view in Python: about 9,000 calls
    a second while a sync runs, each one waiting for the GIL behind the engine thread, which
    stalled the window for 50-150 ms at a time. Only the progress bars are drawn in Python.
    """

    def __init__(self, parent: QObject | None = None, *, linger: float = LINGER_S) -> None:
        super().__init__(0, len(HEADERS), parent)
        self.setHorizontalHeaderLabels(list(HEADERS))
        self._rows: list[Transfer] = []
        self._by_item: dict[str, int] = {}
        self.linger = linger
        self.paused = False
        self.bar_width = 120  # the Progress column's width in pixels (the view keeps it current)

    # -- reading ------------------------------------------------------------------------------------

    def rows(self) -> Sequence[Transfer]:
        return tuple(self._rows)

    def transfer(self, item_id: str) -> Transfer | None:
        position = self._by_item.get(item_id)
        return self._rows[position] if position is not None else None

    # -- updating -----------------------------------------------------------------------------------

    def apply(self, events: Iterable[Event], now: float) -> None:
        changed: set[int] = set()
        added: list[Transfer] = []
        for event in events:
            if isinstance(event, FileStarted):
                self._started(event, added, changed)
            elif isinstance(event, FileProgress | FileDone | FileFailed):
                target = self._find(event.item_id, added)
                if target is None:
                    continue
                row, position = target
                if isinstance(event, FileProgress):
                    share = event.done / event.total if event.total else 1.0
                    row.phase = event.phase
                    # Each file is read down then sent up: each half of the bar is one leg.
                    row.fraction = min(1.0, (0.5 if event.phase == "upload" else 0.0) + share / 2)
                    # A last progress report can trail the pause that interrupted the file.
                    row.status = "Paused" if self.paused else "Uploading" if event.phase == "upload" else "Downloading"
                elif isinstance(event, FileDone):
                    row.fraction, row.status, row.finished_at = 1.0, "Done", now
                    row.message = event.note
                else:
                    row.status = "Will retry" if event.will_retry else "Failed"
                    row.message, row.failed, row.finished_at = event.message, True, now
                if position is not None:
                    changed.add(position)
            elif isinstance(event, JobFinished):
                for position, row in enumerate(self._rows):
                    if row.finished_at is None:
                        row.status, row.finished_at = "Stopped", now
                        changed.add(position)
                for row in added:
                    row.finished_at = row.finished_at or now
        for position in sorted(changed):
            self._show(position)
        for row in added:
            self._by_item[row.item_id] = len(self._rows)
            self._rows.append(row)
            items = [QStandardItem() for _ in HEADERS]
            for item in items:
                item.setEditable(False)
            items[Column.PROGRESS].setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.appendRow(items)
            self._show(len(self._rows) - 1)

    def set_paused(self, paused: bool) -> None:
        """Something holds the sync (or no longer): files in flight say so until they restart."""
        if paused == self.paused:
            return
        self.paused = paused
        for position, row in enumerate(self._rows):
            if row.finished_at is None:
                row.status = "Paused" if paused else "Waiting"
                self._show(position)

    def set_bar_width(self, width: int) -> None:
        """The Progress column is ``width`` pixels wide now: redraw the bars to fit."""
        if width <= 0 or width == self.bar_width:
            return
        self.bar_width = width
        for position, row in enumerate(self._rows):
            progress = self.item(position, Column.PROGRESS)
            if progress is not None:
                progress.setBackground(_bar(round(row.fraction * 100), width))

    def _show(self, position: int) -> None:
        row = self._rows[position]
        percent = f"{round(row.fraction * 100)}%"
        texts = (row.path, percent, format_size(row.size) if row.kind is ActionKind.UPLOAD else "", row.status)
        tip = f"{row.path}\n{row.message}" if row.message else row.path
        for column, text in enumerate(texts):
            item = self.item(position, column)
            if item is None:
                continue
            if item.text() != text:
                item.setText(text)
            if item.toolTip() != tip:
                item.setToolTip(tip)
        progress = self.item(position, Column.PROGRESS)
        if progress is not None and progress.data(PROGRESS_ROLE) != row.fraction:
            progress.setData(row.fraction, PROGRESS_ROLE)
            progress.setData(f"{round(row.fraction * 100)} percent", Qt.ItemDataRole.AccessibleTextRole)
            progress.setBackground(_bar(round(row.fraction * 100), self.bar_width))

    def _started(self, event: FileStarted, added: list[Transfer], changed: set[int]) -> None:
        status = _KIND_WORDS.get(event.kind, "Working")
        existing = self._find(event.item_id, added)
        if existing is not None:  # started again after a pause or a retry
            row, position = existing
            row.status, row.finished_at, row.failed, row.message = status, None, False, ""
            if position is not None:
                changed.add(position)
            return
        added.append(Transfer(event.item_id, event.path, event.size, event.kind, status=status))

    def _find(self, item_id: str, added: list[Transfer]) -> tuple[Transfer, int | None] | None:
        position = self._by_item.get(item_id)
        if position is not None:
            return self._rows[position], position
        for row in added:
            if row.item_id == item_id:
                return row, None
        return None

    def sweep(self, now: float) -> int:
        """Remove rows finished at least ``linger`` seconds ago; returns how many went."""
        removed = 0
        position = len(self._rows) - 1
        while position >= 0:  # contiguous runs from the bottom up: the rows that stay keep their place
            if not self._gone(self._rows[position], now):
                position -= 1
                continue
            end = position
            while position - 1 >= 0 and self._gone(self._rows[position - 1], now):
                position -= 1
            self.removeRows(position, end - position + 1)
            del self._rows[position : end + 1]
            removed += end - position + 1
            position -= 1
        if removed:
            self._by_item = {row.item_id: index for index, row in enumerate(self._rows)}
        return removed

    def _gone(self, row: Transfer, now: float) -> bool:
        return row.finished_at is not None and now - row.finished_at >= self.linger

    def clear(self) -> None:
        self.removeRows(0, self.rowCount())
        self._rows.clear()
        self._by_item.clear()


_BARS: dict[tuple[int, int], QBrush] = {}


def _bar(percent: int, width: int) -> QBrush:
    """The Progress cell's background, filled from the left to ``percent`` of ``width`` pixels.

    Qt paints it in C++ with the cell (the item style puts the brush origin at the cell's
    corner), so a repaint calls no Python per row. A delegate that drew the bar in Python took
    the GIL once per visible row and repaint, each time behind the engine thread: with it the
    window's p99 gap (benchmark B4) was 21-26 ms, without it 10 ms.
    """
    key = (percent, width)
    brush = _BARS.get(key)
    if brush is None:
        filled = QApplication.palette().color(QPalette.ColorRole.Highlight)
        filled.setAlpha(110)
        empty = QColor(0, 0, 0, 0)
        edge = min(1.0, max(0.0, percent / 100))
        gradient = QLinearGradient(0.0, 0.0, float(width), 0.0)
        gradient.setColorAt(0.0, filled if edge > 0 else empty)
        gradient.setColorAt(edge, filled if edge > 0 else empty)
        gradient.setColorAt(min(1.0, edge + 1e-4), empty)
        gradient.setColorAt(1.0, empty if edge < 1 else filled)
        brush = _BARS[key] = QBrush(gradient)
    return brush


class TransfersView(QTreeView):
    """The list of files in flight."""

    def __init__(self, model: TransfersModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setAccessibleName("Files being copied")
        self.setAccessibleDescription("Each file in flight with its own progress")
        header = self.header()
        metrics = self.fontMetrics()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(Column.FILE, QHeaderView.ResizeMode.Stretch)
        for column, sample in ((Column.PROGRESS, "100% 100% 100%"), (Column.SIZE, "1023.9 MB"),
                               (Column.STATUS, "Marking deleted")):  # fmt: skip
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, metrics.horizontalAdvance(sample) + metrics.averageCharWidth() * 3)
        model.set_bar_width(header.sectionSize(Column.PROGRESS))
        header.sectionResized.connect(self._column_resized)

    def _column_resized(self, column: int, _old: int, new: int) -> None:
        model = self.model()
        if column == Column.PROGRESS and isinstance(model, TransfersModel):
            model.set_bar_width(new)
