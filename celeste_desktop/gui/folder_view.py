"""The folder picker: a drive or library chooser above the folder tree with ticks.

:class:`FolderTreeView` shows a :class:`~celeste_desktop.gui.folder_model.FolderModel`: Space
ticks the current folder, collapsing a folder cancels its listing, a failed listing gets a Retry
button, the context menu marks a ticked folder urgent. :class:`FolderPicker` puts the drive list
(``FolderSource.list_drives``) above it and switches the model between drives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from celeste_desktop.domain.errors import CelesteError
from celeste_desktop.domain.models import Drive, DriveKind, SelectionEntry
from celeste_desktop.gui.folder_model import BackgroundTasks, Column, FolderModel, FolderSource, RowKind

URGENT_ACTION = "Mark urgent (sync first)"
_TOGGLE_KEYS = (Qt.Key.Key_Space, Qt.Key.Key_Select)


def drive_label(drive: Drive) -> str:
    """How a drive reads in the picker: ``OneDrive — Morgan Reyes``,
    ``SharePoint — Fleet Technical / Documents``."""
    if drive.kind is DriveKind.SHAREPOINT:
        return f"SharePoint — {drive.owner} / {drive.name}" if drive.owner else f"SharePoint — {drive.name}"
    service = "OneDrive" if drive.kind is DriveKind.ONEDRIVE else "OneDrive (personal)"
    return f"{service} — {drive.owner or drive.name}"


def grouped_drives(drives: Iterable[Drive]) -> list[list[Drive]]:
    """The picker's groups: OneDrives in the order Graph lists them (the user's own first), then
    SharePoint libraries by site and library name."""
    listed = list(drives)
    onedrives = [drive for drive in listed if drive.kind is not DriveKind.SHAREPOINT]
    libraries = sorted(
        (drive for drive in listed if drive.kind is DriveKind.SHAREPOINT),
        key=lambda drive: ((drive.owner or "").casefold(), drive.name.casefold()),
    )
    return [group for group in (onedrives, libraries) if group]


class FolderTreeView(QTreeView):
    """The tree of folders with ticks; the standard view handles clicks on the boxes."""

    def __init__(self, model: FolderModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self.setModel(model)
        self.setAccessibleName("OneDrive folders")
        self.setAccessibleDescription(
            "Tick the folders to copy. Space ticks or unticks the current folder; "
            "the context menu marks a ticked folder urgent."
        )
        self.setUniformRowHeights(True)  # 100,000 rows are laid out without measuring each
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        # Fixed widths: ResizeToContents measures up to 1,000 rows on every relayout.
        header = self.header()
        header.setStretchLastSection(True)
        for column, width in ((Column.NAME, 320), (Column.ITEMS, 70), (Column.SIZE, 80), (Column.URGENT, 80)):
            header.resizeSection(column, width)
        self.customContextMenuRequested.connect(self._show_context_menu)
        self.expanded.connect(self._list_if_needed)
        self.collapsed.connect(self._cancel_listing)
        self.activated.connect(self._retry_if_error)
        self.doubleClicked.connect(self._retry_if_error)
        model.load_failed.connect(self._add_retry_button)

    def folder_model(self) -> FolderModel:
        return self._model

    def keyPressEvent(self, event: QKeyEvent) -> None:
        current = self.currentIndex()
        if event.key() in _TOGGLE_KEYS and current.isValid() and not self._modified(event):
            if self._model.row_kind(current) is RowKind.ERROR:
                self._model.retry(current)
            else:
                self._model.toggle(current.siblingAtColumn(Column.NAME))
            event.accept()
            return
        super().keyPressEvent(event)

    @staticmethod
    def _modified(event: QKeyEvent) -> bool:
        return bool(event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier)

    def context_menu(self, index: QModelIndex) -> QMenu | None:
        """The actions for one row (``None`` where there are none); the caller shows it."""
        if not index.isValid():
            return None
        target = QPersistentModelIndex(index.siblingAtColumn(Column.NAME))
        model = self._model
        menu = QMenu(self)
        if model.row_kind(index) is RowKind.ERROR:
            menu.addAction("Retry").triggered.connect(lambda: model.retry(target))
        elif model.is_checkable(target):
            ticked = model.check_state(target) is Qt.CheckState.Checked
            tick = menu.addAction("Untick" if ticked else "Tick")
            tick.triggered.connect(lambda: model.set_checked(target, not ticked))
            urgent = menu.addAction(URGENT_ACTION)
            urgent.setCheckable(True)
            urgent.setChecked(model.is_urgent(target))
            urgent.setEnabled(model.can_mark_urgent(target))
            urgent.setToolTip("Copy this folder before the others")
            urgent.triggered.connect(lambda checked: model.set_urgent(target, checked))
        else:
            menu.deleteLater()
            return None
        return menu

    def _show_context_menu(self, position: QPoint) -> None:
        menu = self.context_menu(self.indexAt(position))
        if menu is not None:
            # popup(), not exec(): no nested event loop under qasync. deleteLater waits for the
            # loop, so the chosen action still runs.
            menu.aboutToHide.connect(menu.deleteLater)
            menu.popup(self.viewport().mapToGlobal(position))

    def _list_if_needed(self, index: QModelIndex) -> None:
        if self._model.canFetchMore(index):
            self._model.fetchMore(index)

    def _cancel_listing(self, index: QModelIndex) -> None:
        self._model.cancel_loading(index)

    def _retry_if_error(self, index: QModelIndex) -> None:
        if self._model.row_kind(index) is RowKind.ERROR:
            self._model.retry(index)

    def _add_retry_button(self, error_row: QModelIndex) -> None:
        folder = error_row.parent()
        button = QPushButton("Retry")
        button.setAccessibleName(f"Retry listing {folder.data() if folder.isValid() else 'the drive'}")
        target = QPersistentModelIndex(error_row)
        # The view deletes the button (deleteLater) when retry removes the error row.
        button.clicked.connect(lambda: self._model.retry(target))
        self.setIndexWidget(error_row.siblingAtColumn(Column.ITEMS), button)


class FolderPicker(QWidget):
    """The drive or library chooser and the folder tree, for the main window's left pane."""

    selection_changed = Signal()  # the user ticked, unticked or marked urgent
    drive_changed = Signal(str)  # the drive id now shown

    def __init__(
        self,
        source: FolderSource,
        *,
        model: FolderModel | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._source = source
        self._tasks = BackgroundTasks(loop)
        self._listing: asyncio.Task[None] | None = None
        self._drives: list[Drive] = []
        self.model = model or FolderModel(source, loop=loop, parent=self)

        self.drive_combo = QComboBox()
        self.drive_combo.setAccessibleName("Drive or library")
        self.drive_combo.setToolTip("Your OneDrive and the SharePoint libraries you can open")
        self.drive_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        label = QLabel("&Drive or library:")
        label.setBuddy(self.drive_combo)
        self.reload_button = QToolButton()
        self.reload_button.setText("Reload")
        self.reload_button.setAccessibleName("Reload drives and folders")
        self.status_label = QLabel()
        self.status_label.setAccessibleName("Drive list status")
        self.status_label.setWordWrap(True)
        self.status_label.hide()
        self.view = FolderTreeView(self.model)

        row = QHBoxLayout()
        row.addWidget(label)
        row.addWidget(self.drive_combo, 1)
        row.addWidget(self.reload_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(row)
        column.addWidget(self.status_label)
        column.addWidget(self.view, 1)

        self.drive_combo.currentIndexChanged.connect(self._on_drive_chosen)
        self.reload_button.clicked.connect(self.reload)
        self.model.selection_changed.connect(self.selection_changed)

    def drives(self) -> list[Drive]:
        return list(self._drives)

    def selection(self) -> list[SelectionEntry]:
        return self.model.selection()

    def set_selection(self, entries: Iterable[SelectionEntry]) -> None:
        self.model.set_selection(entries)

    def load_drives(self) -> asyncio.Task[None]:
        """List the drives again; a listing still running is cancelled (superseded)."""
        if self._listing is not None:
            self._listing.cancel()
        self._listing = self._tasks.spawn(self._list_drives())
        return self._listing

    def reload(self) -> None:
        self.load_drives()
        self.model.reload()

    def shutdown(self) -> None:
        self._tasks.cancel_all()
        self.model.shutdown()

    async def settled(self) -> None:
        """Wait until the drive list and every folder listing have finished."""
        while len(self._tasks) or self.model.is_busy():
            await self._tasks.settled()
            await self.model.settled()

    async def _list_drives(self) -> None:
        self._show_status("Listing drives and libraries…")
        try:
            drives = await self._source.list_drives()
        except CelesteError as exc:
            self._show_status(f"Couldn't list drives — {exc.title}: {exc}. Press Reload to try again.")
            return
        self.status_label.hide()
        self.set_drives(drives)

    def set_drives(self, drives: Sequence[Drive]) -> None:
        """Fill the chooser and show a drive: the one shown already, else the first that has
        ticked folders, else the user's OneDrive."""
        groups = grouped_drives(drives)
        self._drives = [drive for group in groups for drive in group]
        labels = [drive_label(drive) for drive in self._drives]
        self.drive_combo.blockSignals(True)  # filling it is no choice of the user's
        try:
            self.drive_combo.clear()
            position = 0
            for group in groups:
                if self.drive_combo.count():
                    self.drive_combo.insertSeparator(self.drive_combo.count())
                for drive in group:
                    label = labels[position]
                    if labels.count(label) > 1:  # e.g. two OneDrives of the same person
                        label = f"{label} / {drive.name}"
                    self.drive_combo.addItem(label, drive.drive_id)
                    self.drive_combo.setItemData(
                        self.drive_combo.count() - 1, drive.web_url or label, Qt.ItemDataRole.ToolTipRole
                    )
                    position += 1
        finally:
            self.drive_combo.blockSignals(False)
        known = [drive.drive_id for drive in self._drives]
        ticked = [entry.drive_id for entry in self.model.selection() if entry.included]
        preferred = [self.model.drive_id, *ticked, *known[:1]]
        self.select_drive(next((drive_id for drive_id in preferred if drive_id in known), None))

    def select_drive(self, drive_id: str | None) -> bool:
        row = self.drive_combo.findData(drive_id) if drive_id is not None else -1
        if drive_id is not None and row < 0:
            return False
        self.drive_combo.blockSignals(True)
        self.drive_combo.setCurrentIndex(row)
        self.drive_combo.blockSignals(False)
        self._show_drive(drive_id)
        return True

    def _on_drive_chosen(self, row: int) -> None:
        drive_id = self.drive_combo.itemData(row)
        if isinstance(drive_id, str):
            self._show_drive(drive_id)

    def _show_drive(self, drive_id: str | None) -> None:
        if drive_id == self.model.drive_id:
            return
        self.model.set_drive(drive_id)
        self.drive_changed.emit(drive_id or "")

    def _show_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.show()
