"""The small Protocols through which the engine reaches OneDrive, Supabase and the shore tables.

The real implementations are ``graph`` (DeltaEnumerator, Downloader) and ``storage``
(StorageUploader, Registrar, ShoreStatus), adapted in ``celeste_desktop.compose``; tests pass
fakes. Only what the engine calls is declared here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from celeste_desktop.domain.models import DriveKind, Job, RemoteItem
from celeste_desktop.graph.delta import DeltaCursorLike, DeltaMode, DeltaResult, SavePage
from celeste_desktop.graph.download import DownloadResult, ProgressCallback
from celeste_desktop.storage.registration import DocumentRecord
from celeste_desktop.storage.uploader import MoveOutcome, UploadResult


class Source(Protocol):
    """OneDrive / SharePoint: listing changes and downloading content."""

    async def enumerate(
        self,
        drive_id: str,
        scope_item_id: str | None,
        *,
        cursor: DeltaCursorLike | None,
        save_page: SavePage,
        mode: DeltaMode = ...,
        selection: Collection[str] = ...,
        known_ids: Callable[[], Collection[str]] | None = ...,
        known_folders: Mapping[str, str | None] | None = ...,
        check_anchors: bool = ...,
    ) -> DeltaResult: ...

    async def download(
        self,
        item: RemoteItem,
        spool: Path,
        *,
        offset: int = ...,
        on_progress: ProgressCallback | None = ...,
        drive_kind: DriveKind | None = ...,
        durable: bool = ...,
        on_written: Callable[[int], None] | None = ...,
    ) -> DownloadResult: ...


class Destination(Protocol):
    """The fleet's Supabase: objects in the bucket and the pipeline's rows."""

    async def prepare(self) -> None:
        """Warm up before the first upload (connection, bucket rules); errors are not fatal."""

    async def upload(
        self,
        source: Path,
        key: str,
        *,
        upload_id: str,
        content_type: str | None = ...,
        display_path: str | None = ...,
        progress: Callable[[int], None] | None = ...,
        verify: bool = ...,
        size: int | None = ...,
        ready: Callable[[int], Awaitable[None]] | None = ...,
    ) -> UploadResult: ...

    async def object_size(self, key: str) -> int | None: ...

    async def move(self, source_key: str, destination_key: str) -> MoveOutcome: ...

    async def delete(self, key: str) -> bool: ...

    async def register(self, record: DocumentRecord, *, reindex: bool = ...) -> str: ...

    async def mark_deleted(self, record: DocumentRecord) -> str: ...


class ShoreReporter(Protocol):
    """Shore-side status rows: queued in the local outbox (no network), flushed when reachable."""

    def connection(
        self,
        user_principal_name: str,
        *,
        tenant_id: str | None = ...,
        sync_enabled: bool = ...,
        selected_folders: Sequence[str] = ...,
        last_sync_at: datetime | None = ...,
    ) -> int: ...

    def file_state(
        self,
        user_principal_name: str,
        *,
        drive_id: str,
        item_id: str,
        status: str,
        path: str | None = ...,
        name: str | None = ...,
        size: int | None = ...,
        etag: str | None = ...,
        ctag: str | None = ...,
        quickxor: str | None = ...,
        sha256: str | None = ...,
        storage_path: str | None = ...,
        error: str | None = ...,
        extracted_metadata: Mapping[str, Any] | None = ...,
        synced_at: datetime | None = ...,
    ) -> int: ...

    def job(self, user_principal_name: str, job: Job) -> int: ...

    async def flush(self, *, batch_size: int = ...) -> object: ...
