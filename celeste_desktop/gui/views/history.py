"""The History tab: past jobs from the local state, and each job's manifest on double-click."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

from celeste_desktop.domain.models import Job, JobStatus
from celeste_desktop.domain.rules import format_size
from celeste_desktop.gui.views.table import RecordTableModel, table_view
from celeste_desktop.store.records import ManifestRow

HISTORY_HEADERS = ("Started", "Kind", "Result", "Files", "Data", "Took")
MANIFEST_HEADERS = ("File", "Outcome", "Size", "Why")
_RESULT_WORDS = {
    JobStatus.PENDING: "Waiting",
    JobStatus.RUNNING: "Running",
    JobStatus.COMPLETED: "Completed",
    JobStatus.PARTIAL: "Some files failed",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELLED: "Cancelled",
}


def job_cells(job: Job) -> tuple[str, ...]:
    counters = job.counters
    files = f"{counters.files_succeeded} done"
    if counters.files_skipped:
        files += f", {counters.files_skipped} skipped"
    if counters.files_failed:
        files += f", {counters.files_failed} failed"
    took = ""
    if job.finished_at is not None:
        seconds = max(0, round((job.finished_at - job.started_at).total_seconds()))
        took = f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
    return (
        job.started_at.astimezone().strftime("%Y-%m-%d %H:%M"),
        "Dry run" if job.dry_run else "Sync",
        _RESULT_WORDS.get(job.status, job.status.value),
        files,
        format_size(counters.bytes_uploaded),
        took,
    )


class HistoryView(QWidget):
    """The job list; ``job_activated`` asks for a job's manifest (double-click or Enter)."""

    job_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: RecordTableModel[Job] = RecordTableModel(HISTORY_HEADERS, self)
        self.view = table_view(
            self.model, "Sync history", "Past syncs, newest first. Press Enter or double-click to see a sync's files.",
            ("2024-01-01 00:00", "Dry run", "Some files failed", "9999 done, 99 skipped", "1023.9 MB"),
        )  # fmt: skip
        self.empty_label = QLabel("No sync has run yet. Press Sync now to start the first one.")
        self.empty_label.setWordWrap(True)
        self.open_button = QPushButton("Show &files of this sync")
        self.open_button.setAccessibleName("Show the files of the selected sync")
        self.open_button.setEnabled(False)
        column = QVBoxLayout(self)
        column.addWidget(self.empty_label)
        column.addWidget(self.view, 1)
        column.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.view.activated.connect(self._activated)
        self.open_button.clicked.connect(lambda: self._activated(self.view.currentIndex()))
        self.view.selectionModel().currentChanged.connect(
            lambda current, _previous: self.open_button.setEnabled(current.isValid())
        )

    def set_jobs(self, jobs: Sequence[Job]) -> None:
        self.model.set_rows(jobs, [job_cells(job) for job in jobs], [job.error or "" for job in jobs])
        self.empty_label.setVisible(not jobs)

    def _activated(self, index: QModelIndex) -> None:
        job = self.model.record(index.row()) if index.isValid() else None
        if job is not None:
            self.job_activated.emit(job.job_id)


class ManifestDialog(QDialog):
    """What happened to each file in one job: delivered, skipped, failed, with the reason."""

    def __init__(self, job: Job | None, rows: Sequence[ManifestRow], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        when = job.started_at.astimezone().strftime("%Y-%m-%d %H:%M") if job else ""
        self.setWindowTitle(f"Files of the sync of {when}" if when else "Files of the sync")
        self.model: RecordTableModel[ManifestRow] = RecordTableModel(MANIFEST_HEADERS, self)
        self.model.set_rows(
            rows,
            [(row.path, row.outcome.value.capitalize(), format_size(row.size), row.reason) for row in rows],
            [f"{row.path}\n{row.reason}" if row.reason else row.path for row in rows],
        )
        view = table_view(self.model, "Files of this sync", "Each file of the sync with what happened to it",
                          ("04_MANUALS/Main Engines/Long file name.pdf", "Relocated", "1023.9 MB"))  # fmt: skip
        summary = QLabel(f"{len(rows)} files." if rows else "This sync handled no files.")
        summary.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(view, 1)
        layout.addWidget(buttons)
        self.view = view
        metrics = self.fontMetrics()
        self.resize(metrics.averageCharWidth() * 120, metrics.height() * 30)
