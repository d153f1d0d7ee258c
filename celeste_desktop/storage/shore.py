"""Shore-side status: the ``onedrive_connections``, ``onedrive_sync_state`` and
``onedrive_sync_jobs`` rows the office reads, written through a local outbox.

Nothing here waits for the link. `ShoreStatus.connection`, `file_state` and `job` only queue a
row in the `Outbox` (the local SQLite state implements it); `flush` sends queued rows in order,
as PostgREST upserts on the conflict targets of supabase/README.md, and removes each row from
the outbox only once the project has it. While Supabase is unreachable the rows wait (across
restarts, since the outbox is on disk); sending one twice is harmless (upserts).

The children's ``connection_id`` is the connection row's ``id``, which the database generates
and the app must not send. Queued children carry the account (``user_principal_name``) instead,
and `flush` puts in the id it learns from the connection upsert (or looks it up), so rows
queued before the first contact with shore still arrive. No token, secret or key is ever part
of a row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from celeste_desktop import __version__
from celeste_desktop.domain.errors import ConfigError, RemoteError, ServiceUnavailable
from celeste_desktop.domain.models import Job
from celeste_desktop.net.policy import safe_text
from celeste_desktop.storage.rest import RestClient

__all__ = [
    "CONNECTIONS",
    "CONNECTION_REF",
    "JOBS",
    "SYNC_STATE",
    "FlushResult",
    "Outbox",
    "QueuedRow",
    "ShoreStatus",
]

_log = logging.getLogger(__name__)

CONNECTIONS = "onedrive_connections"
SYNC_STATE = "onedrive_sync_state"
JOBS = "onedrive_sync_jobs"
CONFLICTS = {
    CONNECTIONS: "yacht_id,user_principal_name",
    SYNC_STATE: "connection_id,onedrive_drive_id,onedrive_item_id",
    JOBS: "id",
}
# In a queued child row: the account whose connection ``id`` goes into ``connection_id``.
CONNECTION_REF = "__connection_upn__"
SYNC_STATUSES = frozenset({"pending", "syncing", "completed", "failed", "skipped", "deleted"})
_JOB_NAMESPACE = uuid.UUID("0d7a3c52-5f1e-4b7a-9c1d-2e6f8a4b9c30")


class QueuedRow(Protocol):
    """One outbox entry (the store's ``OutboxEntry`` fits)."""

    @property
    def seq(self) -> int: ...

    @property
    def target(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...

    @property
    def conflict(self) -> str: ...


class Outbox(Protocol):
    """The local outbox (``store.StateDB`` implements it): ordered, durable, acked by ``seq``."""

    def enqueue(
        self, target: str, payload: Mapping[str, Any], *, conflict: str = "", dedupe_key: str | None = None
    ) -> int: ...

    def peek_outbox(self, limit: int = 100) -> Sequence[QueuedRow]: ...

    def ack_outbox(self, seqs: Iterable[int]) -> int: ...

    def record_outbox_failure(self, seq: int, error: str) -> None: ...


@dataclass
class FlushResult:
    sent: int = 0
    dropped: list[str] = field(default_factory=list)  # rows shore refused for good, why
    offline: str | None = None  # why the flush stopped early (rows stay queued), else None

    @property
    def complete(self) -> bool:
        return self.offline is None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _job_uuid(job_id: str) -> str:
    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        return str(uuid.uuid5(_JOB_NAMESPACE, job_id))


class ShoreStatus:
    """Queues status rows for shore and sends them when the link allows."""

    def __init__(self, outbox: Outbox, rest: RestClient, *, app_version: str = __version__) -> None:
        self._outbox = outbox
        self._rest = rest
        self._app_version = app_version
        self._connection_ids: dict[str, str] = {}

    @property
    def yacht_id(self) -> str:
        return self._rest.target.yacht_id

    # -- queueing (no network) ---------------------------------------------------------------

    def connection(
        self,
        user_principal_name: str,
        *,
        tenant_id: str | None = None,
        sync_enabled: bool = True,
        selected_folders: Sequence[str] = (),
        last_sync_at: datetime | None = None,
    ) -> int:
        row: dict[str, Any] = {
            "yacht_id": self.yacht_id,
            "user_principal_name": user_principal_name,
            "tenant_id": tenant_id,
            "sync_enabled": sync_enabled,
            "selected_folders": list(selected_folders),
            "app_version": self._app_version,
        }
        if last_sync_at is not None:  # never overwrite a known time with "unknown"
            row["last_sync_at"] = _iso(last_sync_at)
        return self._queue(CONNECTIONS, row, dedupe_key=user_principal_name.lower())

    def file_state(
        self,
        user_principal_name: str,
        *,
        drive_id: str,
        item_id: str,
        status: str,
        path: str | None = None,
        name: str | None = None,
        size: int | None = None,
        etag: str | None = None,
        ctag: str | None = None,
        quickxor: str | None = None,
        sha256: str | None = None,
        storage_path: str | None = None,
        error: str | None = None,
        extracted_metadata: Mapping[str, Any] | None = None,
        synced_at: datetime | None = None,
    ) -> int:
        if status not in SYNC_STATUSES:
            raise ValueError(f"sync_status must be one of {sorted(SYNC_STATUSES)}")
        row: dict[str, Any] = {
            CONNECTION_REF: user_principal_name,
            "yacht_id": self.yacht_id,
            "onedrive_drive_id": drive_id,
            "onedrive_item_id": item_id,
            "onedrive_path": path,
            "file_name": name,
            "file_size": size,
            "onedrive_etag": etag,
            "onedrive_ctag": ctag,
            "quick_xor_hash": quickxor,
            "sha256": sha256,
            "storage_bucket": self._rest.target.bucket if storage_path else None,
            "storage_path": storage_path,
            "sync_status": status,
            # A person's message only: never a token or a pre-authenticated URL.
            "last_error": safe_text(error, 1000) if error else None,
            "extracted_metadata": dict(extracted_metadata) if extracted_metadata is not None else None,
            "synced_at": _iso(synced_at),
        }
        return self._queue(SYNC_STATE, row, dedupe_key=f"{drive_id}/{item_id}")

    def job(self, user_principal_name: str, job: Job) -> int:
        counters = job.counters
        row: dict[str, Any] = {
            CONNECTION_REF: user_principal_name,
            "id": _job_uuid(job.job_id),
            "yacht_id": self.yacht_id,
            "job_status": str(job.status),
            # Every counter is sent: they are NOT NULL (see supabase/README.md).
            "total_files_found": counters.files_found,
            "files_succeeded": counters.files_succeeded,
            "files_failed": counters.files_failed,
            "files_skipped": counters.files_skipped,
            "bytes_downloaded": counters.bytes_downloaded,
            "bytes_uploaded": counters.bytes_uploaded,
            "started_at": _iso(job.started_at),
            "completed_at": _iso(job.finished_at),
            "error_summary": safe_text(job.error, 1000) if job.error else None,
        }
        return self._queue(JOBS, row, dedupe_key=row["id"])

    def _queue(self, table: str, row: dict[str, Any], *, dedupe_key: str) -> int:
        return self._outbox.enqueue(table, row, conflict=CONFLICTS[table], dedupe_key=dedupe_key)

    # -- sending -----------------------------------------------------------------------------

    async def flush(self, *, batch_size: int = 100) -> FlushResult:
        """Send queued rows in order until the outbox is empty or shore cannot be reached.

        Raises `ConfigError` when a setting must be fixed (the rows stay queued).
        """
        result = FlushResult()
        single = False  # after a refused batch: send one row at a time to find the bad one
        while True:
            entries = list(self._outbox.peek_outbox(limit=1 if single else batch_size))
            if not entries:
                return result
            batch = _leading_batch(entries)
            try:
                rows = [await self._resolve(entry) for entry in batch]
                returned = await self._rest.upsert(
                    batch[0].target, rows, on_conflict=batch[0].conflict, returning=batch[0].target == CONNECTIONS
                )
            except ConfigError:
                raise
            except ServiceUnavailable as exc:
                result.offline = exc.message
                return result
            except RemoteError as exc:
                if exc.status not in (400, 409, 422):
                    raise  # not about one row's data (a missing table, a refused key): keep them all
                if len(batch) > 1:
                    single = True
                    continue
                # Shore refuses this row for good (a constraint): keep it from blocking the rest.
                entry = batch[0]
                self._outbox.record_outbox_failure(entry.seq, exc.message)
                self._outbox.ack_outbox([entry.seq])
                result.dropped.append(f"{entry.target}: {exc.message}")
                _log.warning("shore refused a %s row and it was dropped: %s", entry.target, exc.message)
                single = False
                continue
            for row in returned:
                upn, row_id = row.get("user_principal_name"), row.get("id")
                if isinstance(upn, str) and isinstance(row_id, str):
                    self._connection_ids[upn.lower()] = row_id
            self._outbox.ack_outbox([entry.seq for entry in batch])
            result.sent += len(batch)
            single = False

    async def _resolve(self, entry: QueuedRow) -> dict[str, Any]:
        row = dict(entry.payload)
        upn = row.pop(CONNECTION_REF, None)
        if isinstance(upn, str):
            row["connection_id"] = await self._connection_id(upn)
        return row

    async def _connection_id(self, upn: str) -> str:
        cached = self._connection_ids.get(upn.lower())
        if cached is not None:
            return cached
        found = await self._rest.select(
            CONNECTIONS,
            {"select": "id", "yacht_id": f"eq.{self.yacht_id}", "user_principal_name": f"eq.{upn}", "limit": "1"},
        )
        if not found:
            # The connection row was never queued or got lost: create the minimum so children fit.
            found = await self._rest.upsert(
                CONNECTIONS,
                {"yacht_id": self.yacht_id, "user_principal_name": upn, "app_version": self._app_version},
                on_conflict=CONFLICTS[CONNECTIONS],
                returning=True,
            )
        row_id = found[0].get("id") if found else None
        if not isinstance(row_id, str):
            raise ServiceUnavailable("Supabase did not return the connection's id; status rows will be sent later.")
        self._connection_ids[upn.lower()] = row_id
        return row_id


def _leading_batch(entries: Sequence[QueuedRow]) -> list[QueuedRow]:
    """The first entries that fit one upsert: same table, conflict and columns, no row twice."""
    first = entries[0]
    columns = set(first.payload)
    conflict_columns = [c.strip() for c in first.conflict.split(",") if c.strip()]
    seen: set[tuple[Any, ...]] = set()
    batch: list[QueuedRow] = []
    for entry in entries:
        if entry.target != first.target or entry.conflict != first.conflict or set(entry.payload) != columns:
            break
        key = (*(str(entry.payload.get(c)) for c in conflict_columns), str(entry.payload.get(CONNECTION_REF)))
        if key in seen:  # PostgREST refuses to touch one row twice in one statement
            break
        seen.add(key)
        batch.append(entry)
    return batch
