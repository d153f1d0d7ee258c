"""Plain records the store hands out besides the domain's own dataclasses (no I/O, no SQL)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from celeste_desktop.domain.errors import CelesteError
from celeste_desktop.domain.models import DeltaMode

__all__ = [
    "DeltaCursor",
    "DeltaMode",
    "FileState",
    "ManifestOutcome",
    "ManifestRow",
    "OutboxEntry",
    "RecoveryNotice",
    "StateTooNew",
    "StateUnavailable",
    "StoredAccount",
    "TransferCheckpoint",
    "UsageDay",
]


class StateTooNew(CelesteError):
    """The state database was written by a newer version of the app than this one."""

    default_title = "Local state is from a newer version"


class StateUnavailable(CelesteError):
    """The state cannot be opened for a reason a rebuild would not fix (permissions, disk)."""

    default_title = "Local state cannot be opened"


class FileState(enum.StrEnum):
    """Where one source file stands in the sync."""

    PENDING = "pending"
    DOWNLOADING = "downloading"
    UPLOADING = "uploading"
    REGISTERING = "registering"
    DONE = "done"
    FAILED = "failed"  # waiting for its next retry
    DEAD = "dead"  # dead letter: parked until someone resets it
    SKIPPED = "skipped"


class ManifestOutcome(enum.StrEnum):
    DELIVERED = "delivered"
    RELOCATED = "relocated"
    DELETED = "deleted"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """Who is signed in (never a token: those live in the encrypted vault)."""

    upn: str
    tenant_id: str
    home_account_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeltaCursor:
    """Where the enumeration of one delta scope stands.

    ``next_link`` is set while an enumeration is under way (the page to fetch next after a
    restart); ``delta_link`` once an enumeration completed (the link for the next run).
    """

    drive_id: str
    scope_item_id: str  # "" for the drive root
    next_link: str | None
    delta_link: str | None
    updated_at: datetime

    @property
    def resume_link(self) -> str | None:
        """The link to fetch next: an unfinished enumeration first, else the changes since."""
        return self.next_link or self.delta_link


@dataclass(frozen=True, slots=True)
class TransferCheckpoint:
    """How far one file's transfer got, so it resumes after a restart instead of starting over.

    The download half: bytes ``[0, download_offset)`` of the source are in ``spool_path`` and
    were flushed to the OS before the offset was saved; the spool may hold more (written after
    the last checkpoint) and is truncated back to the offset on resume. Hash states are not
    saved (``hashlib`` objects cannot be serialised portably): on resume the engine re-reads the
    spool's first ``download_offset`` bytes to rebuild the SHA-256 and QuickXorHash, which costs
    local disk reads only, never satellite bytes.

    The upload half: the TUS upload URL and the offset the server last acknowledged (the engine
    still asks the server with HEAD before resuming; the saved offset is a hint).
    ``source_*`` describe the content being copied: if the source changed since, the engine
    discards the checkpoint.
    """

    drive_id: str
    item_id: str
    source_ctag: str | None
    source_quickxor: str | None
    source_size: int
    spool_path: str
    download_offset: int
    download_complete: bool
    tus_url: str | None
    tus_offset: int
    upload_key: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One line of a job's delivery manifest: what happened to one file, and why."""

    drive_id: str
    item_id: str
    path: str
    outcome: ManifestOutcome
    at: datetime
    size: int = 0
    sha256: str | None = None
    quickxor: str | None = None
    storage_key: str | None = None
    registration_id: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A row waiting to be pushed to shore, in ``seq`` order."""

    seq: int
    target: str  # where it goes, e.g. a table name
    payload: dict[str, Any]
    conflict: str  # the upsert conflict target (columns), "" for a plain insert
    created_at: datetime
    attempts: int = 0
    last_error: str | None = None
    dedupe_key: str | None = None


@dataclass(frozen=True, slots=True)
class UsageDay:
    """Bytes that crossed the link on one day (for the data budget)."""

    day: date
    bytes_sent: int
    bytes_received: int


@dataclass(frozen=True, slots=True)
class RecoveryNotice:
    """The state was unreadable at start-up and has been rebuilt empty."""

    moved_to: Path  # the damaged database, kept for support
    reason: str  # what SQLite said, for the diagnostics file
    title: str = "Local sync state rebuilt"
    message: str = (
        "The local sync state was damaged and has been rebuilt; the next sync re-checks every "
        "file without re-sending what is already in storage."
    )
