"""Registration with the CelesteOS pipeline: one ``doc_metadata`` row and one ``search_index`` row
per document, upserted exactly as supabase/README.md specifies.

- ``doc_metadata`` on ``yacht_id,source,source_id`` with ``source='onedrive'`` and ``source_id``
  = `domain.models.document_id` (yacht, drive, item): a rename or move updates the one row.
- ``search_index`` on ``object_type,object_id`` with ``object_type='document'``, the same id,
  ``org_id = yacht_id`` and ``embedding_status`` ``pending_extraction`` for files the pipeline
  reads (`domain.rules.is_indexable`) or ``storage_only``.
- ``doc_type`` and ``system_tag`` come from `domain.metadata.classify` over the folder path from
  the drive root; the OneDrive path, name and ids stay in ``metadata`` (jsonb), because the key
  may be a rewritten name (docs/storage-keys.md).

Both upserts are idempotent: registering twice leaves one row in each table. A file removed
upstream is soft-deleted: ``doc_metadata.deleted_at`` is set (there is no delete privilege) and
its search entry carries ``payload.deleted_at``. ``embedding_status`` is left alone on removal:
the pipeline owns its values (the README allows only the two above from us), and a new value
could break a CHECK the pipeline may add; search clients filter on ``payload.deleted_at`` or on
``doc_metadata.deleted_at``. Registering the file again clears both marks.

Registrations of files finishing at the same time share their requests (group commit): the
first `Registrar.register` sends at once; records that arrive while a batch is on the wire
wait for it and then go together — one ``doc_metadata`` upsert and one ``search_index`` upsert
with an array body, up to ``max_batch`` records. There is no fixed waiting window: at four files
at a time a 20 ms window would add 20 ms to every file on a fast link, while on a satellite
link the round trip itself gathers the batch. Batches go one after another, so a document
registered twice lands in the order it was asked. Rows are built exactly as for a single
registration; ``search_index`` rows with and without ``embedding_status`` (``reindex``) go in
separate requests, because PostgREST takes the columns of a bulk insert from its first row.
If the server refuses a batch, its records are sent again one by one, so each caller gets its
own id or its own error; only a batch that got no reply at all (the link is down) fails every
caller at once, as sending each again would wait out the same outage once per record.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celeste_desktop import __version__
from celeste_desktop.domain.errors import CelesteError, ServiceUnavailable
from celeste_desktop.domain.metadata import MetadataRules, classify
from celeste_desktop.domain.models import document_id
from celeste_desktop.domain.rules import content_type_for, is_indexable
from celeste_desktop.net.clock import Clock, SystemClock
from celeste_desktop.storage.rest import RestClient

__all__ = [
    "DOC_METADATA",
    "DOC_METADATA_CONFLICT",
    "SEARCH_INDEX",
    "SEARCH_INDEX_CONFLICT",
    "SOURCE",
    "DocumentRecord",
    "Registrar",
]

SOURCE = "onedrive"
DOC_METADATA = "doc_metadata"
DOC_METADATA_CONFLICT = "yacht_id,source,source_id"
SEARCH_INDEX = "search_index"
SEARCH_INDEX_CONFLICT = "object_type,object_id"
OBJECT_TYPE = "document"
PENDING_EXTRACTION = "pending_extraction"
STORAGE_ONLY = "storage_only"
MAX_BATCH = 50  # records per request: ~2 KB each, so a batch stays one small request


@dataclass(frozen=True)
class DocumentRecord:
    """One delivered file as the pipeline sees it: where it came from and where it is stored."""

    drive_id: str
    item_id: str
    name: str  # the OneDrive name, unchanged
    folder_path: tuple[str, ...]  # folders from the drive (library) root, unchanged
    storage_key: str  # the object key inside the bucket, under ``{yacht_id}/``
    size: int
    sha256: str | None = None
    content_type: str | None = None  # from the name when None
    drive_name: str | None = None
    web_url: str | None = None
    ctag: str | None = None
    quickxor: str | None = None
    modified: datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # more for ``metadata`` (jsonb)

    @property
    def system_path(self) -> str:
        return "/".join(self.folder_path)

    @property
    def original_path(self) -> str:
        return "/".join((*self.folder_path, self.name))


@dataclass
class _Pending:
    """One record waiting for its batch; its caller awaits ``done``."""

    doc_id: str
    doc_row: dict[str, Any]
    search_row: dict[str, Any]
    done: asyncio.Future[str]


@dataclass
class _Batch:
    records: list[_Pending] = field(default_factory=list)
    doc_ids: set[str] = field(default_factory=set)


class Registrar:
    """Writes a document's two pipeline rows as the yacht key, batching concurrent registrations."""

    def __init__(
        self,
        rest: RestClient,
        *,
        rules: MetadataRules | None = None,
        clock: Clock | None = None,
        app_version: str = __version__,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._rest = rest
        self._rules = rules
        self._clock = clock or SystemClock()
        self._app_version = app_version
        self._max_batch = max(1, max_batch)
        self._queue: deque[_Batch] = deque()  # batches not yet sent, oldest first
        self._pending: dict[str, asyncio.Future[str]] = {}  # doc id -> its latest registration
        self._sending: _Batch | None = None  # the batch on the wire
        self._sender: asyncio.Task[None] | None = None

    @property
    def yacht_id(self) -> str:
        return self._rest.target.yacht_id

    @property
    def bucket(self) -> str:
        return self._rest.target.bucket

    def document_id(self, record: DocumentRecord) -> str:
        return document_id(self.yacht_id, record.drive_id, record.item_id)

    # -- rows --------------------------------------------------------------------------------

    def doc_metadata_row(self, record: DocumentRecord) -> dict[str, Any]:
        tags = classify(record.folder_path, record.name, self._rules)
        metadata: dict[str, Any] = {
            "onedrive": {
                "drive_id": record.drive_id,
                "item_id": record.item_id,
                "drive_name": record.drive_name,
                "path": record.original_path,
                "name": record.name,
                "folders": list(record.folder_path),
                "web_url": record.web_url,
                "ctag": record.ctag,
                "quick_xor_hash": record.quickxor,
                "modified": record.modified.isoformat() if record.modified else None,
            },
            "system_tag": tags.system_tag,
            "indexable": is_indexable(record.name, record.size),
            "app": f"CelesteDesktop/{self._app_version}",
            **dict(record.extra),
        }
        return {
            "yacht_id": self.yacht_id,
            "source": SOURCE,
            "source_id": self.document_id(record),
            "filename": record.name,
            "storage_path": record.storage_key,
            "storage_bucket": self.bucket,
            "original_path": record.original_path,
            "content_type": record.content_type or content_type_for(record.name),
            "size_bytes": record.size,
            "sha256": record.sha256,
            "system_path": record.system_path,
            "doc_type": tags.doc_type,
            "system_type": tags.system_tag,
            "metadata": metadata,
            "deleted_at": None,  # a file that comes back is live again
        }

    def search_payload(self, record: DocumentRecord, *, deleted_at: datetime | None = None) -> dict[str, Any]:
        tags = classify(record.folder_path, record.name, self._rules)
        payload: dict[str, Any] = {
            "filename": record.name,
            "doc_type": tags.doc_type,
            "system_tag": tags.system_tag,
            "storage_path": record.storage_key,
            "bucket": self.bucket,
            "source": SOURCE,
            "system_path": record.system_path,
            "original_path": record.original_path,
            "content_type": record.content_type or content_type_for(record.name),
            "size_bytes": record.size,
        }
        if deleted_at is not None:
            payload["deleted_at"] = deleted_at.isoformat()
        return payload

    def search_index_row(self, record: DocumentRecord, *, reindex: bool = True) -> dict[str, Any]:
        tags = classify(record.folder_path, record.name, self._rules)
        words = [record.name, *record.folder_path, tags.doc_type, tags.system_tag]
        row: dict[str, Any] = {
            "object_type": OBJECT_TYPE,
            "object_id": self.document_id(record),
            "org_id": self.yacht_id,
            "yacht_id": self.yacht_id,
            "search_text": " ".join(dict.fromkeys(w for w in words if w)),
            "payload": self.search_payload(record),
        }
        if reindex:
            row["embedding_status"] = PENDING_EXTRACTION if is_indexable(record.name, record.size) else STORAGE_ONLY
        return row

    # -- calls -------------------------------------------------------------------------------

    async def register(self, record: DocumentRecord, *, reindex: bool = True) -> str:
        """Upsert both rows; returns the document id (``source_id`` = ``object_id``).

        ``reindex=False`` (a rename or move with unchanged content) leaves ``embedding_status``
        as the pipeline set it, so the text is not extracted again. Concurrent calls share
        requests (see the module docstring); each returns its own id or raises its own error.
        """
        if not record.storage_key.startswith(f"{self.yacht_id}/"):
            raise ValueError("the storage key must lie under this yacht's folder")
        doc_id = self.document_id(record)
        pending = _Pending(
            doc_id,
            self.doc_metadata_row(record),
            self.search_index_row(record, reindex=reindex),
            self._this_loop().create_future(),
        )
        batch = self._queue[-1] if self._queue else None
        if batch is None or len(batch.records) >= self._max_batch or doc_id in batch.doc_ids:
            # A document twice in one upsert is an error (21000): its second version waits for
            # the next batch, which goes after this one.
            batch = _Batch()
            self._queue.append(batch)
        batch.records.append(pending)
        batch.doc_ids.add(doc_id)
        self._pending[doc_id] = pending.done
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_batches(), name="celeste-registrations")
        return await pending.done

    async def _send_batches(self) -> None:
        try:
            await asyncio.sleep(0)  # callers of this same loop turn join the first batch
            while self._queue:
                self._sending = self._queue.popleft()
                await self._send_batch([r for r in self._sending.records if not r.done.done()])
                for record in self._sending.records:
                    if self._pending.get(record.doc_id) is record.done:
                        del self._pending[record.doc_id]
                self._sending = None
        except Exception as exc:  # a bug: its callers raise it
            self._abandon(exc)
        except BaseException as exc:  # cancelled, the loop is closing: no caller may wait for ever
            self._abandon(exc)
            raise
        finally:
            self._sender = None

    def _abandon(self, exc: BaseException) -> None:
        for batch in (*([self._sending] if self._sending else []), *self._queue):
            for record in batch.records:
                _settle(record, exc)
        self._sending = None
        self._queue.clear()
        self._pending.clear()

    def _this_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop; batches left by a loop that has gone (an earlier run) go with it."""
        loop = asyncio.get_running_loop()
        if self._sender is not None and self._sender.get_loop() is not loop:
            self._sender = self._sending = None
            self._queue.clear()
            self._pending.clear()
        return loop

    async def _send_batch(self, records: list[_Pending]) -> None:
        if len(records) <= 1:
            for record in records:
                await self._send_one(record)
            return
        try:
            await self._upsert(records)
        except ServiceUnavailable as exc:
            if exc.status is None:  # no reply at all: the link is down for every record alike
                for record in records:
                    _settle(record, exc)
                return
            for record in records:  # a reply (5xx after retries) may be about one bad row
                await self._send_one(record)
        except CelesteError:
            for record in records:  # refused: find out which record, and send the others
                await self._send_one(record)
        else:
            for record in records:
                _settle(record, record.doc_id)

    async def _send_one(self, record: _Pending) -> None:
        if record.done.done():
            return
        try:
            await self._upsert([record])
        except Exception as exc:
            _settle(record, exc)
        else:
            _settle(record, record.doc_id)

    async def _upsert(self, records: list[_Pending]) -> None:
        await self._rest.upsert(DOC_METADATA, [r.doc_row for r in records], on_conflict=DOC_METADATA_CONFLICT)
        by_columns: dict[frozenset[str], list[dict[str, Any]]] = {}
        for record in records:
            by_columns.setdefault(frozenset(record.search_row), []).append(record.search_row)
        for rows in by_columns.values():
            await self._rest.upsert(SEARCH_INDEX, rows, on_conflict=SEARCH_INDEX_CONFLICT)

    async def mark_deleted(self, record: DocumentRecord, *, deleted_at: datetime | None = None) -> str:
        """Soft-delete: ``doc_metadata.deleted_at`` and ``search_index.payload.deleted_at``.

        Rows that were never registered are left alone (zero rows updated is not an error).
        """
        moment = deleted_at or self._clock.now()
        doc_id = self.document_id(record)
        self._this_loop()
        registering = self._pending.get(doc_id)
        if registering is not None:
            # A registration still on its way must not land after (and undo) the deletion.
            await asyncio.wait([registering])  # its outcome is its caller's to raise
        await self._rest.update(
            DOC_METADATA,
            {"yacht_id": f"eq.{self.yacht_id}", "source": f"eq.{SOURCE}", "source_id": f"eq.{doc_id}"},
            {"deleted_at": moment.isoformat()},
        )
        await self._rest.update(
            SEARCH_INDEX,
            {"object_type": f"eq.{OBJECT_TYPE}", "object_id": f"eq.{doc_id}"},
            {"payload": self.search_payload(record, deleted_at=moment)},
        )
        return doc_id


def _settle(record: _Pending, outcome: str | BaseException) -> None:
    if record.done.done():
        return  # its caller was cancelled
    if isinstance(outcome, asyncio.CancelledError):
        record.done.cancel()
    elif isinstance(outcome, BaseException):
        record.done.set_exception(outcome)
    else:
        record.done.set_result(outcome)
