"""A read-only table model of text rows, each with the record it shows (history, problems, manifest)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QHeaderView, QTreeView

Index = QModelIndex | QPersistentModelIndex
R = TypeVar("R")


class RecordTableModel(QAbstractTableModel, Generic[R]):
    """Rows of display text built from records; ``record(row)`` gives the record back."""

    def __init__(self, headers: Sequence[str], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._headers = tuple(headers)
        self._records: list[R] = []
        self._cells: list[tuple[str, ...]] = []
        self._tips: list[str] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._cells)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation is Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self._headers[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._cells):
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._cells[index.row()][index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tips[index.row()] or self._cells[index.row()][index.column()]
        return None

    def set_rows(self, records: Sequence[R], cells: Sequence[tuple[str, ...]], tips: Sequence[str] = ()) -> None:
        self.beginResetModel()
        self._records = list(records)
        self._cells = list(cells)
        self._tips = list(tips) or [""] * len(self._cells)
        self.endResetModel()

    def record(self, row: int) -> R | None:
        return self._records[row] if 0 <= row < len(self._records) else None

    def records(self) -> list[R]:
        return list(self._records)

    def text(self, row: int, column: int) -> str:
        return self._cells[row][column]


def table_view(model: QAbstractTableModel, name: str, description: str, widths: Sequence[str]) -> QTreeView:
    """A flat, sortable-looking list view; column widths from sample text, so 150 % scaling fits."""
    view = QTreeView()
    view.setModel(model)
    view.setRootIsDecorated(False)
    view.setUniformRowHeights(True)
    view.setAlternatingRowColors(True)
    view.setAccessibleName(name)
    view.setAccessibleDescription(description)
    view.setSelectionBehavior(QTreeView.SelectionBehavior.SelectRows)
    header = view.header()
    header.setStretchLastSection(True)
    metrics = view.fontMetrics()
    for column, sample in enumerate(widths):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(column, metrics.horizontalAdvance(sample) + metrics.averageCharWidth() * 3)
    return view
