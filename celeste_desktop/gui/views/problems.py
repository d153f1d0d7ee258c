"""The Problems tab: per-file failures, parked files (dead letters) and skips, each with its reason.

Retry puts a failed or parked file back in line for the next sync; Open in OneDrive shows the
file where it lives, for the skips a person has to fix at the source (a OneNote notebook, a
file flagged as malware, a name the target refuses).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from celeste_desktop.domain.models import FileProblem, FileProblemKind
from celeste_desktop.gui.views.table import RecordTableModel, table_view

HEADERS = ("File", "Problem", "Why", "What to do")
_KIND_WORDS = {
    FileProblemKind.DEAD_LETTER: "Parked",
    FileProblemKind.FAILED: "Failed, will retry",
    FileProblemKind.SKIPPED: "Not copied",
    FileProblemKind.NOTE: "Note",
}


def advice(problem: FileProblem) -> str:
    if problem.kind is FileProblemKind.DEAD_LETTER:
        return f"Failed {problem.attempts} times; fix the cause, then press Retry."
    if problem.kind is FileProblemKind.FAILED:
        return "Retried automatically with growing pauses; Retry sends it with the next sync."
    if problem.kind is FileProblemKind.SKIPPED:
        if problem.web_url:
            return "To copy it, change it in OneDrive."
        return "Nothing to do."
    return "For information."


def can_retry(problem: FileProblem) -> bool:
    return problem.kind in (FileProblemKind.DEAD_LETTER, FileProblemKind.FAILED)


class ProblemsView(QWidget):
    """The problem list with Retry and Open in OneDrive."""

    retry_requested = Signal(list)  # list[FileProblem]
    open_requested = Signal(object)  # FileProblem with a web_url

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: RecordTableModel[FileProblem] = RecordTableModel(HEADERS, self)
        self.view = table_view(
            self.model, "Problems", "Files that failed, were parked or were not copied, with the reason",
            ("04_MANUALS/Galley/A long file name.pdf", "Failed, will retry", "OneNote notebooks have no file"),
        )  # fmt: skip
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Problems summary")
        self.retry_button = QPushButton("Retr&y")
        self.retry_button.setAccessibleName("Retry the selected file with the next sync")
        self.retry_button.setToolTip("Put the selected file back in line for the next sync")
        self.retry_all_button = QPushButton("Retry &all parked")
        self.retry_all_button.setAccessibleName("Retry every parked file with the next sync")
        self.open_button = QPushButton("&Open in OneDrive")
        self.open_button.setAccessibleName("Open the selected file in OneDrive")
        self.open_button.setToolTip("Open the file in the browser, where it can be fixed")
        self.details = QLabel("Select a file to see the whole reason and what to do.")
        self.details.setWordWrap(True)
        self.details.setAccessibleName("Selected problem")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        for button in (self.retry_button, self.retry_all_button, self.open_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        column.addWidget(self.summary)
        column.addWidget(self.view, 1)
        column.addWidget(self.details)
        column.addLayout(buttons)
        self.retry_button.clicked.connect(self._retry_selected)
        self.retry_all_button.clicked.connect(self._retry_all)
        self.open_button.clicked.connect(self._open_selected)
        self.view.activated.connect(self._activated)
        self.view.selectionModel().currentChanged.connect(lambda current, _previous: self._update_buttons())
        self.set_problems([])

    def set_problems(self, problems: Sequence[FileProblem]) -> None:
        self.model.set_rows(
            problems,
            [(p.path, _KIND_WORDS.get(p.kind, p.kind.value), p.message, advice(p)) for p in problems],
            [f"{p.path}\n{p.message}" for p in problems],
        )
        failed = sum(1 for p in problems if p.kind in (FileProblemKind.FAILED, FileProblemKind.DEAD_LETTER))
        skipped = sum(1 for p in problems if p.kind is FileProblemKind.SKIPPED)
        if not problems:
            self.summary.setText("No problems: every file was copied or is waiting its turn.")
        else:
            self.summary.setText(f"{failed} failed or parked, {skipped} not copied by rule.")
        self._update_buttons()

    def current(self) -> FileProblem | None:
        index = self.view.currentIndex()
        return self.model.record(index.row()) if index.isValid() else None

    def select_row(self, row: int) -> None:
        self.view.setCurrentIndex(self.model.index(row, 0))

    def _update_buttons(self) -> None:
        problem = self.current()
        if problem is not None:
            self.details.setText(f"{problem.path}: {problem.message} {advice(problem)}")
        else:
            self.details.setText("Select a file to see the whole reason and what to do.")
        self.retry_button.setEnabled(problem is not None and can_retry(problem))
        self.open_button.setEnabled(problem is not None and bool(problem.web_url))
        self.retry_all_button.setEnabled(any(p.kind is FileProblemKind.DEAD_LETTER for p in self.model.records()))

    def _retry_selected(self) -> None:
        problem = self.current()
        if problem is not None and can_retry(problem):
            self.retry_requested.emit([problem])

    def _retry_all(self) -> None:
        parked = [p for p in self.model.records() if p.kind is FileProblemKind.DEAD_LETTER]
        if parked:
            self.retry_requested.emit(parked)

    def _open_selected(self) -> None:
        problem = self.current()
        if problem is not None and problem.web_url:
            self.open_requested.emit(problem)

    def _activated(self, index: QModelIndex) -> None:
        problem = self.model.record(index.row()) if index.isValid() else None
        if problem is not None and problem.web_url:
            self.open_requested.emit(problem)
