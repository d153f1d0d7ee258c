"""The overall progress (files and bytes, speed, time left) and the last sync's summary."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import QFormLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from celeste_desktop.domain.models import Job, JobStatus
from celeste_desktop.domain.rules import format_size
from celeste_desktop.engine.events import (
    EnumerationProgress,
    Event,
    FileDone,
    FileFailed,
    FileSkipped,
    JobFinished,
    JobPlanned,
    Throughput,
)
from celeste_desktop.gui.views import format_duration, format_rate
from celeste_desktop.gui.views.history import job_cells

SCALE = 1000  # bars count in thousandths: byte totals overflow a QProgressBar's int


def _bar(name: str) -> QProgressBar:
    bar = QProgressBar()
    bar.setRange(0, SCALE)
    bar.setValue(0)
    bar.setAccessibleName(name)
    bar.setTextVisible(True)
    return bar


class ProgressPanel(QWidget):
    """Two bars (files, data) and a line with the speed and the time left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.files_bar = _bar("Files copied")
        self.bytes_bar = _bar("Data copied")
        self.phase_label = QLabel("No sync running.")
        self.phase_label.setWordWrap(True)
        self.phase_label.setAccessibleName("Sync activity")
        self.rate_label = QLabel("")
        self.rate_label.setWordWrap(True)
        self.rate_label.setAccessibleName("Speed and time left")
        form = QFormLayout()
        form.addRow("Files:", self.files_bar)
        form.addRow("Data:", self.bytes_bar)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.phase_label)
        column.addLayout(form)
        column.addWidget(self.rate_label)
        self.files_total = self.files_done = 0
        self.bytes_total = self.bytes_done = 0
        self.running = False
        self.finished = False
        self._show()

    def reset(self, phase: str = "No sync running.") -> None:
        self.files_total = self.files_done = self.bytes_total = self.bytes_done = 0
        self.finished = False
        self.rate_label.setText("")
        self.phase_label.setText(phase)
        self._show()

    def apply(self, events: Iterable[Event]) -> None:
        touched = False
        for event in events:
            if isinstance(event, JobPlanned):
                if event.dry_run:
                    size = format_size(event.bytes)
                    self.phase_label.setText(f"Checked: {event.files} files, {size} would be copied.")
                    continue
                self.running, self.finished = True, False
                self.files_total, self.bytes_total = event.files, event.bytes
                self.files_done = self.bytes_done = 0
                copying = event.files - event.skipped
                self.phase_label.setText(
                    f"Copying {copying} files ({format_size(event.bytes)})"
                    + (f"; {event.skipped} more not copied by rule." if event.skipped else ".")
                )
                touched = True
            elif isinstance(event, EnumerationProgress):
                self.phase_label.setText(f"Listing changes in {event.drive_name}: {event.items_seen} items so far…")
            elif isinstance(event, FileDone | FileFailed | FileSkipped):
                if self.running:
                    self.files_done = min(self.files_total, self.files_done + 1)
                    touched = True
            elif isinstance(event, Throughput):
                self.files_done = max(self.files_done, min(event.files_done, self.files_total))
                self.bytes_done = max(self.bytes_done, min(event.bytes_done, self.bytes_total))
                left = f" · {format_duration(event.eta_seconds)} left" if event.eta_seconds else ""
                self.rate_label.setText(f"{format_rate(event.bytes_per_second)}{left}")
                touched = True
            elif isinstance(event, JobFinished) and self.running:
                self.running, self.finished = False, True
                if event.status in (JobStatus.COMPLETED, JobStatus.PARTIAL):
                    self.files_done, self.bytes_done = self.files_total, self.bytes_total
                self.phase_label.setText("Finished." if event.status is not JobStatus.CANCELLED else "Cancelled.")
                self.rate_label.setText("")
                touched = True
        if touched:
            self._show()

    def _show(self) -> None:
        self.rate_label.setVisible(bool(self.rate_label.text()))
        self.files_bar.setValue(_share(self.files_done, self.files_total, self.finished))
        self.files_bar.setFormat(f"{self.files_done} of {self.files_total} files")
        self.bytes_bar.setValue(_share(self.bytes_done, self.bytes_total, self.finished))
        self.bytes_bar.setFormat(f"{format_size(self.bytes_done)} of {format_size(self.bytes_total)}")


def _share(done: int, total: int, finished: bool) -> int:
    if total <= 0:
        return SCALE if finished else 0  # a sync with nothing to do is complete, not stuck
    return min(SCALE, round(done * SCALE / total))


class SummaryPanel(QWidget):
    """One line about the last finished sync, with what to do when it was not clean."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("No sync has run yet.")
        self.label.setWordWrap(True)
        self.label.setAccessibleName("Last sync")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.label)

    def set_job(self, job: Job | None, summary: str | None = None) -> None:
        if job is None:
            self.label.setText("No sync has run yet.")
            return
        started, _kind, result, files, data, took = job_cells(job)
        text = summary or f"{result}: {files}; {data} copied."
        advice = ""
        if job.status is JobStatus.PARTIAL:
            advice = " Some files failed: see Problems; they are retried automatically."
        elif job.status is JobStatus.FAILED and job.error:
            advice = f" {job.error}"
        self.label.setText(f"Last sync {started}" + (f" ({took})" if took else "") + f": {text}{advice}")
