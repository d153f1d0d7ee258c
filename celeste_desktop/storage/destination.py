"""The register-mode destination as the engine uses it: deliver a file (upload, verify, register),
relocate a renamed or moved one (server-side move, re-register), remove one (soft delete, and
the object itself only when ``delete_objects_on_remove`` is on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from celeste_desktop.storage.registration import DocumentRecord, Registrar
from celeste_desktop.storage.uploader import MoveOutcome, StorageUploader, UploadResult

__all__ = ["Delivery", "Removal", "SupabaseDestination"]


@dataclass(frozen=True)
class Delivery:
    document_id: str
    upload: UploadResult


@dataclass(frozen=True)
class Removal:
    document_id: str
    object_deleted: bool  # False: kept (the default), or the key may not delete (swept shore-side)


class SupabaseDestination:
    """Uploads and registers documents for one yacht."""

    def __init__(
        self, uploader: StorageUploader, registrar: Registrar, *, delete_objects_on_remove: bool = False
    ) -> None:
        self.uploader = uploader
        self.registrar = registrar
        self.delete_objects_on_remove = delete_objects_on_remove

    async def deliver(
        self,
        source: Path,
        record: DocumentRecord,
        *,
        upload_id: str,
        progress: Callable[[int], None] | None = None,
    ) -> Delivery:
        """Upload ``source`` under ``record.storage_key``, check it, then register it."""
        upload = await self.uploader.upload(
            source,
            record.storage_key,
            upload_id=upload_id,
            content_type=record.content_type,
            display_path=record.original_path,
            progress=progress,
        )
        return Delivery(await self.registrar.register(record), upload)

    async def relocate(self, record: DocumentRecord, previous_key: str) -> MoveOutcome:
        """Move the object to its new key and update the rows, without sending the file again.

        On `MoveOutcome.SOURCE_MISSING` or `MoveOutcome.DESTINATION_EXISTS` nothing changed:
        deliver the file instead (the upload overwrites what is under the new key).
        """
        outcome = await self.uploader.move(previous_key, record.storage_key)
        if outcome in (MoveOutcome.MOVED, MoveOutcome.UNCHANGED):
            await self.registrar.register(record, reindex=False)
        return outcome

    async def remove(self, record: DocumentRecord, *, deleted_at: datetime | None = None) -> Removal:
        """Soft-delete the registration; delete the object only if the setting says so."""
        document_id = await self.registrar.mark_deleted(record, deleted_at=deleted_at)
        deleted = False
        if self.delete_objects_on_remove:
            deleted = await self.uploader.delete(record.storage_key)
        return Removal(document_id, deleted)
