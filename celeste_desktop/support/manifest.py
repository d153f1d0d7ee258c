"""The delivery report of one sync job: evidence for audits, built from the local state.

``build_report`` turns a job's manifest into a :class:`DeliveryReport` (a header, one row per
file, totals); ``save_csv`` writes it for machines and spreadsheets, ``gui/report_pdf.py``
renders the same model for people. No Qt here.

The CSV (decided for the bridge PC and for scripts that reconcile it against storage):

- UTF-8 **with a BOM**: Excel on Windows reads a BOM-less UTF-8 file as the local code page
  and mangles names like "Ölfilter"; Python (``utf-8-sig``), pandas and most tools skip it.
- One header row, then one ``record=file`` row per file, sorted by drive then path, and last
  one ``record=total`` row (counts in ``reason``, bytes delivered in ``size_bytes``). Filter on
  ``record`` and the rest is a plain table.
- The job's facts (yacht, account, status, start and finish) repeat on every row, so a row
  stands alone once several reports are concatenated.
- Timestamps are ISO 8601 in UTC with a ``Z`` (``2026-01-31T08:15:00Z``); sizes in bytes.
- Values are written exactly as they are in storage, never altered for Excel's sake (no
  leading apostrophes before ``=`` or ``-``): the CSV is for reconciling, the PDF for reading.
"""

from __future__ import annotations

import contextlib
import csv
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from celeste_desktop import __version__
from celeste_desktop.domain.errors import CelesteError
from celeste_desktop.domain.models import Drive, Job, JobStatus
from celeste_desktop.store.records import ManifestOutcome, ManifestRow, StoredAccount

__all__ = [
    "CSV_COLUMNS",
    "DeliveryReport",
    "JobNotFound",
    "ReportHeader",
    "ReportRow",
    "ReportSource",
    "ReportTotals",
    "build_report",
    "csv_rows",
    "iso_utc",
    "save_csv",
    "select_job",
    "write_atomically",
    "write_csv",
]

CSV_COLUMNS = (
    "record",
    "outcome",
    "drive",
    "path",
    "size_bytes",
    "sha256",
    "quickxor_hash",
    "storage_key",
    "registration_id",
    "at",
    "reason",
    "drive_id",
    "item_id",
    "job_id",
    "yacht_id",
    "account",
    "job_status",
    "dry_run",
    "job_started_at",
    "job_finished_at",
)
_HISTORY = 500  # jobs searched for an id prefix (the state keeps about this many)


class JobNotFound(CelesteError):
    default_title = "No such sync"


class ReportSource(Protocol):
    """What the report reads from the state (``StateDB`` has it; tests pass a fake)."""

    def jobs(self, limit: int = 50) -> list[Job]: ...
    def job(self, job_id: str) -> Job | None: ...
    def manifest(self, job_id: str) -> list[ManifestRow]: ...
    def account(self) -> StoredAccount | None: ...
    def drives(self) -> list[Drive]: ...


@dataclass(frozen=True, slots=True)
class ReportRow:
    """What happened to one file, with the evidence that it arrived intact."""

    outcome: ManifestOutcome
    drive_name: str
    path: str  # inside the drive, as OneDrive shows it: "04_MANUALS/Galley/Oven.pdf"
    size: int
    at: datetime  # when it was delivered (or skipped, or failed)
    sha256: str | None
    quickxor: str | None
    storage_key: str | None
    registration_id: str | None  # the pipeline's document id (doc_metadata.source_id)
    reason: str
    drive_id: str
    item_id: str

    @property
    def onedrive_path(self) -> str:
        return "/" + self.path


@dataclass(frozen=True, slots=True)
class ReportTotals:
    delivered: int = 0
    relocated: int = 0  # moved or renamed: same bytes, new key, registration updated
    removed: int = 0  # deleted upstream or unselected: registration withdrawn
    skipped: int = 0
    failed: int = 0
    bytes_delivered: int = 0

    @property
    def files(self) -> int:
        return self.delivered + self.relocated + self.removed + self.skipped + self.failed

    def summary(self) -> str:
        """All five counts, always: "41 delivered, 0 relocated, 0 removed, 4 skipped, 0 failed"."""
        return (
            f"{self.delivered} delivered, {self.relocated} relocated, {self.removed} removed, "
            f"{self.skipped} skipped, {self.failed} failed"
        )


@dataclass(frozen=True, slots=True)
class ReportHeader:
    yacht_id: str
    account: str  # the Microsoft 365 account (UPN); "" when none is remembered
    job_id: str
    status: JobStatus
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None  # None while the job runs
    generated_at: datetime
    drives: tuple[str, ...]  # the drives or libraries the files come from, by name
    app_version: str = __version__


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    header: ReportHeader
    rows: tuple[ReportRow, ...]  # sorted by drive, then path
    totals: ReportTotals

    def _of(self, *outcomes: ManifestOutcome) -> tuple[ReportRow, ...]:
        return tuple(row for row in self.rows if row.outcome in outcomes)

    @property
    def delivered(self) -> tuple[ReportRow, ...]:
        """Files now in storage and registered (new, changed, re-registered or relocated)."""
        return self._of(ManifestOutcome.DELIVERED, ManifestOutcome.RELOCATED)

    @property
    def removed(self) -> tuple[ReportRow, ...]:
        return self._of(ManifestOutcome.DELETED)

    @property
    def skipped(self) -> tuple[ReportRow, ...]:
        return self._of(ManifestOutcome.SKIPPED)

    @property
    def failed(self) -> tuple[ReportRow, ...]:
        return self._of(ManifestOutcome.FAILED)


def select_job(source: ReportSource, job_id: str | None) -> Job:
    """The job named by ``job_id`` (a full id or an unambiguous prefix), else the latest real sync.

    Without an id, dry runs are passed over: they moved nothing, so they prove no delivery.
    """
    if job_id:
        wanted = job_id.strip()
        exact = source.job(wanted)
        if exact is not None:
            return exact
        matches = [job for job in source.jobs(limit=_HISTORY) if job.job_id.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise JobNotFound(
                f"{len(matches)} syncs have ids starting with {wanted!r}; give more of the id "
                "(`celeste-desktop status --json` shows the last one).",
                title="Sync id is ambiguous",
            )
        raise JobNotFound(f"No sync with id {wanted!r} on this PC; leave out --job to report the latest sync.")
    for job in source.jobs(limit=_HISTORY):
        if not job.dry_run:
            return job
    raise JobNotFound(
        "No sync has run on this PC yet, so there is nothing to report: run a sync first "
        "(dry runs move nothing and are only reported when named with --job ID)."
    )


def build_report(
    source: ReportSource, yacht_id: str, job_id: str | None = None, *, now: datetime | None = None
) -> DeliveryReport:
    """The delivery report of one job (see :func:`select_job` for which one)."""
    job = select_job(source, job_id)
    drive_names = {drive.drive_id: drive.name for drive in source.drives()}
    rows = sorted(
        (_row(line, drive_names.get(line.drive_id, line.drive_id)) for line in source.manifest(job.job_id)),
        key=lambda row: (row.drive_name.casefold(), row.path.casefold(), row.path),
    )
    account = source.account()
    header = ReportHeader(
        yacht_id=yacht_id,
        account=account.upn if account else "",
        job_id=job.job_id,
        status=job.status,
        dry_run=job.dry_run,
        started_at=job.started_at,
        finished_at=job.finished_at,
        generated_at=now or datetime.now(UTC),
        drives=tuple(sorted({row.drive_name for row in rows}, key=str.casefold)),
    )
    return DeliveryReport(header, tuple(rows), _totals(rows))


def _row(line: ManifestRow, drive_name: str) -> ReportRow:
    return ReportRow(
        outcome=line.outcome,
        drive_name=drive_name,
        path=line.path,
        size=line.size,
        at=line.at,
        sha256=line.sha256,
        quickxor=line.quickxor,
        storage_key=line.storage_key,
        registration_id=line.registration_id,
        reason=line.reason,
        drive_id=line.drive_id,
        item_id=line.item_id,
    )


def _totals(rows: Sequence[ReportRow]) -> ReportTotals:
    count = {outcome: 0 for outcome in ManifestOutcome}
    for row in rows:
        count[row.outcome] += 1
    return ReportTotals(
        delivered=count[ManifestOutcome.DELIVERED],
        relocated=count[ManifestOutcome.RELOCATED],
        removed=count[ManifestOutcome.DELETED],
        skipped=count[ManifestOutcome.SKIPPED],
        failed=count[ManifestOutcome.FAILED],
        bytes_delivered=sum(row.size for row in rows if row.outcome is ManifestOutcome.DELIVERED),
    )


# -- CSV ---------------------------------------------------------------------------------------


def iso_utc(moment: datetime | None) -> str:
    """``2026-01-31T08:15:00Z``; "" for None. A naive time is taken as UTC (how the state stores)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def csv_rows(report: DeliveryReport) -> Iterator[list[str]]:
    """The CSV's rows as text, header first, then the files, then the totals row."""
    header = report.header
    job_facts = [
        header.job_id,
        header.yacht_id,
        header.account,
        header.status.value,
        "true" if header.dry_run else "false",
        iso_utc(header.started_at),
        iso_utc(header.finished_at),
    ]
    yield list(CSV_COLUMNS)
    for row in report.rows:
        yield [
            "file",
            row.outcome.value,
            row.drive_name,
            row.path,
            str(row.size),
            row.sha256 or "",
            row.quickxor or "",
            row.storage_key or "",
            row.registration_id or "",
            iso_utc(row.at),
            row.reason,
            row.drive_id,
            row.item_id,
            *job_facts,
        ]
    totals = report.totals
    yield [
        "total",
        "",
        "",
        "",
        str(totals.bytes_delivered),
        "",
        "",
        "",
        "",
        iso_utc(header.generated_at),
        totals.summary(),
        "",
        "",
        *job_facts,
    ]


def write_csv(report: DeliveryReport, stream: TextIO) -> None:
    """Write the CSV to an open text stream (open files with ``newline=""``)."""
    writer = csv.writer(stream, lineterminator="\r\n")  # RFC 4180 line ends, as Excel writes
    writer.writerows(csv_rows(report))


def save_csv(report: DeliveryReport, target: Path) -> None:
    """Write the CSV to ``target`` (UTF-8 with a BOM), replacing it only once complete."""
    with write_atomically(target) as temporary, temporary.open("w", encoding="utf-8-sig", newline="") as stream:
        write_csv(report, stream)


@contextlib.contextmanager
def write_atomically(target: Path) -> Iterator[Path]:
    """A temporary path next to ``target`` that replaces it on success and vanishes on error.

    A report cut short (disk full, Ctrl+C) must not leave a half-written file that looks like
    evidence, nor destroy the previous report of the same name.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its file is private (0600) and the report is for others to read; a name
    # no one else uses, created by the writer, gets the usual permissions.
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
