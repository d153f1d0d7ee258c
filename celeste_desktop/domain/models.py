"""Plain dataclasses the engine, the store and the clients exchange. No I/O.

Graph's wire JSON is converted to ``RemoteItem`` at the edge (``graph/``); the store persists
``RemoteItem``, ``DeliveredFile`` and friends; the planner turns them into ``PlannedAction``s.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

# Namespace of the stable document ids: uuid5(NAMESPACE, f"onedrive:{yacht}:{drive_id}:{item_id}").
DOCUMENT_NAMESPACE = uuid.UUID("6f0c3f7e-4a8e-5b8e-9c55-6c2d8f3a1b7e")


def document_id(yacht_id: str, drive_id: str, item_id: str) -> str:
    """The pipeline's ``object_id`` (and ``doc_metadata.source_id``) for one source file.

    Stable across renames, moves and re-uploads, so a re-upload updates and never duplicates.
    The yacht id is part of the identity because ``search_index`` is unique across the whole
    fleet: two yachts syncing the same SharePoint library must not share rows.
    """
    return str(uuid.uuid5(DOCUMENT_NAMESPACE, f"onedrive:{uuid.UUID(yacht_id)!s}:{drive_id}:{item_id}"))


@dataclass(frozen=True, slots=True)
class RemoteItem:
    """One drive item (file or folder) as last seen in OneDrive/SharePoint."""

    drive_id: str
    item_id: str
    parent_id: str | None  # None for the drive root
    name: str
    is_folder: bool
    size: int = 0
    etag: str | None = None
    ctag: str | None = None  # changes with content only (a rename keeps it)
    quickxor: str | None = None  # base64 QuickXorHash, when Graph gives one
    mime_type: str | None = None
    modified: datetime | None = None
    web_url: str | None = None
    package_type: str | None = None  # "oneNote" for notebooks: nothing to download
    malware: bool = False
    is_root: bool = False
    child_count: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteDeletion:
    """An item reported deleted by delta (on Business it may carry no name)."""

    drive_id: str
    item_id: str


RemoteChange = RemoteItem | RemoteDeletion


class DeltaMode(enum.StrEnum):
    """How a drive is enumerated: one delta per selected folder, or one root delta filtered."""

    FOLDER = "folder"
    ROOT = "root"


class DriveKind(enum.StrEnum):
    ONEDRIVE = "business"
    SHAREPOINT = "documentLibrary"
    PERSONAL = "personal"


@dataclass(frozen=True, slots=True)
class Drive:
    drive_id: str
    name: str
    kind: DriveKind
    owner: str | None = None  # user or site display name
    site_id: str | None = None
    web_url: str | None = None


@dataclass(frozen=True, slots=True)
class SelectionEntry:
    """A ticked (included) or unticked-under-a-ticked-parent (excluded) folder, by id."""

    drive_id: str
    item_id: str
    included: bool
    urgent: bool = False
    path: str = ""  # for display and the CLI; the id is what counts


@dataclass(frozen=True, slots=True)
class DeliveredFile:
    """What is in storage and registered for one source file (the basis of incremental sync)."""

    drive_id: str
    item_id: str
    storage_key: str
    ctag: str | None
    quickxor: str | None
    size: int
    sha256: str
    folder_path: tuple[str, ...]
    name: str
    registered: bool = True
    deleted: bool = False
    delivered_at: datetime | None = None


class ActionKind(enum.StrEnum):
    UPLOAD = "upload"  # new file, or content changed: bytes move
    RELOCATE = "relocate"  # renamed or moved, same content: storage move + re-register, no bytes
    REGISTER = "register"  # in storage but registration missing or stale
    DELETE = "delete"  # removed upstream or unselected: soft-delete the registration
    SKIP = "skip"  # not copied, with a reason the officer sees


@dataclass(frozen=True, slots=True)
class PlannedAction:
    kind: ActionKind
    drive_id: str
    item_id: str
    folder_path: tuple[str, ...]
    name: str
    size: int = 0
    storage_key: str = ""
    previous_key: str | None = None
    reason: str = ""  # why: "new", "content changed", a skip reason message…
    reason_code: str = ""
    urgent: bool = False
    ctag: str | None = None
    quickxor: str | None = None

    @property
    def display_path(self) -> str:
        return "/".join((*self.folder_path, self.name))


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[PlannedAction, ...] = ()

    def of(self, kind: ActionKind) -> tuple[PlannedAction, ...]:
        return tuple(action for action in self.actions if action.kind is kind)

    @property
    def bytes_to_move(self) -> int:
        return sum(action.size for action in self.actions if action.kind is ActionKind.UPLOAD)


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"  # every file succeeded or was skipped with a reason
    PARTIAL = "partial"  # some files failed
    FAILED = "failed"  # the job itself could not run (sign-in, configuration, outage)
    CANCELLED = "cancelled"


@dataclass(slots=True)
class JobCounters:
    files_found: int = 0
    files_succeeded: int = 0
    files_failed: int = 0
    files_skipped: int = 0
    bytes_downloaded: int = 0
    bytes_uploaded: int = 0


@dataclass(slots=True)
class Job:
    job_id: str
    status: JobStatus
    started_at: datetime
    finished_at: datetime | None = None
    counters: JobCounters = field(default_factory=JobCounters)
    error: str | None = None
    dry_run: bool = False


class FileProblemKind(enum.StrEnum):
    FAILED = "failed"  # will be retried with a growing delay
    DEAD_LETTER = "dead_letter"  # parked after too many failures until someone resets it
    SKIPPED = "skipped"  # not copied, by rule
    NOTE = "note"  # delivered, with something worth knowing (altered by SharePoint, no hash)


@dataclass(frozen=True, slots=True)
class FileProblem:
    drive_id: str
    item_id: str
    path: str
    kind: FileProblemKind
    code: str
    message: str
    attempts: int = 0
    web_url: str | None = None
    updated_at: datetime | None = None
