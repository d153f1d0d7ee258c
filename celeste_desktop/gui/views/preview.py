"""Before a large first sync: what it would copy, how long that takes on this link, what share of
the data budget it uses, go or not now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

from celeste_desktop.domain.models import Job
from celeste_desktop.domain.rules import format_size
from celeste_desktop.engine.budget import BudgetStatus, describe_share, wire_bytes_for
from celeste_desktop.gui.views import format_duration, format_rate
from celeste_desktop.store.records import ManifestOutcome, ManifestRow

LARGE_BYTES = 100 * 1000 * 1000
LARGE_FILES = 500


@dataclass(frozen=True)
class SyncPreview:
    """What a dry run found: files and bytes to copy, skips, and the link speed to estimate with."""

    files: int
    bytes: int
    skipped: int
    bytes_per_second: float  # 0 when nothing has been measured yet
    budget: BudgetStatus | None = None  # the data budget as the dry run left it

    @property
    def exceeds_budget(self) -> bool:
        """The sync needs more than the data budget has left (it would pause part-way)."""
        remaining = self.budget.remaining if self.budget is not None and not self.budget.override else None
        return remaining is not None and wire_bytes_for(self.bytes) > remaining

    @property
    def seconds(self) -> float | None:
        return self.bytes / self.bytes_per_second if self.bytes_per_second > 0 else None

    def is_large(self, *, max_bytes: int = LARGE_BYTES, max_files: int = LARGE_FILES) -> bool:
        return self.bytes > max_bytes or self.files > max_files

    def describe(self) -> str:
        text = f"The first sync would copy {self.files} files, {format_size(self.bytes)} in all"
        text += f" ({self.skipped} more are not copied by rule)." if self.skipped else "."
        if self.seconds is not None:
            text += (
                f" At the speed measured on this link ({format_rate(self.bytes_per_second)}) that takes "
                f"{format_duration(self.seconds)}."
            )
        else:
            text += " The link speed has not been measured yet, so the time it takes is unknown."
        if self.budget is not None:
            share = describe_share(self.budget, self.bytes)
            text += f" {share}" if share else ""
        return text


def preview_of(
    rows: Sequence[ManifestRow], jobs: Sequence[Job], *, moved_bytes: int, seconds: float,
    budget: BudgetStatus | None = None,
) -> SyncPreview:  # fmt: skip
    """The numbers of a dry run's manifest, with the best link speed known and the data budget."""
    sending = [row for row in rows if row.reason.startswith("would upload")]
    skipped = sum(1 for row in rows if row.outcome is ManifestOutcome.SKIPPED)
    # The listing's own traffic is the only measure a first sync has; it understates a link
    # whose delay, not its rate, dominates small requests, so past syncs win when there are any.
    listing_rate = moved_bytes / seconds if seconds > 0.5 and moved_bytes > 64 * 1024 else 0.0
    rate = measured_rate(jobs) or listing_rate
    return SyncPreview(len(sending), sum(row.size for row in sending), skipped, rate, budget)


def measured_rate(jobs: Sequence[Job]) -> float:
    """Bytes/s that past real syncs actually got over the link; 0 when none has moved data."""
    sent = seconds = 0.0
    for job in jobs:
        if job.dry_run or job.finished_at is None or not job.counters.bytes_uploaded:
            continue
        sent += job.counters.bytes_uploaded
        seconds += max(1.0, (job.finished_at - job.started_at).total_seconds())
    return sent / seconds if seconds else 0.0


class PreviewDialog(QDialog):
    """Start sync / Not now; opened with ``open()`` (no nested event loop under qasync)."""

    def __init__(self, preview: SyncPreview, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview = preview
        self.setWindowTitle("Before the first sync")
        self.setAccessibleName("Before the first sync")
        text = QLabel(
            preview.describe()
            + " The link stays usable meanwhile, and the sync can be paused at any moment; it resumes "
            "where it stopped. You can also untick folders first and sync a part now."
        )
        text.setWordWrap(True)
        text.setAccessibleName("What the first sync would copy")
        self.text = text
        self.budget_warning = QLabel("<b>Warning: this sync needs more than the data budget has left.</b>")
        self.budget_warning.setWordWrap(True)
        self.budget_warning.setAccessibleName("Data budget warning")
        self.budget_warning.setVisible(preview.exceeds_budget)
        buttons = QDialogButtonBox()
        self.start_button: QPushButton = buttons.addButton("&Start sync", QDialogButtonBox.ButtonRole.AcceptRole)
        self.later_button: QPushButton = buttons.addButton("&Not now", QDialogButtonBox.ButtonRole.RejectRole)
        self.start_button.setAccessibleName("Start the first sync now")
        self.later_button.setAccessibleName("Do not sync now")
        self.start_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(self.budget_warning)
        layout.addWidget(buttons)
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 60)
