"""The tables the simulated PostgREST serves, and Postgres-like value checks for them.

``TABLES`` is the one place the sim's schema lives, so it can be aligned with the SQL under
``supabase/migrations``: columns with types, defaults, NOT NULL, CHECK lists, foreign keys,
the primary key, unique constraints (the ``on_conflict`` targets) and the row-level security
mirror (which column holds the yacht, and whether a yacht key may read its rows back).
Errors carry Postgres SQLSTATE codes and messages; ``PgError.response`` renders them the way
PostgREST does: ``{"code", "details", "hint", "message"}``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from celeste_desktop.sim.http import Response

ColumnType = Literal["uuid", "text", "bigint", "integer", "boolean", "jsonb", "timestamptz"]
_STATUS = {
    "23505": 409, "23503": 409, "42501": 403, "PGRST205": 404, "PGRST116": 406,
    "PGRST103": 416, "PGRST301": 401, "PGRST303": 401, "42P01": 404,
}
_TYPE_NAMES = {"timestamptz": "timestamp with time zone"}
_INT_RANGE = {"integer": 2**31, "bigint": 2**63}


Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    type: ColumnType
    nullable: bool = True
    generated: Literal["uuid", "now"] | None = None  # gen_random_uuid() / now()
    default: Any = None


@dataclass(frozen=True)
class Check:
    """A CHECK constraint; ``test`` returns False only for a violating row (NULL passes, as in SQL)."""

    name: str
    test: Callable[[Row], bool]


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` reference ``table(target)``; ON DELETE CASCADE."""

    name: str
    columns: tuple[str, ...]
    table: str
    target: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """One table: columns and constraints, plus the row-level security mirror.

    ``write_policy`` is what a yacht key's INSERT/UPDATE WITH CHECK demands beyond
    ``yacht_column`` = the key's yacht; ``yacht_can_select`` says whether its SELECT policy
    exists (return=representation and upserts need it); ``anon_granted`` whether anon has
    table privileges at all; ``yacht_can_delete`` whether authenticated holds DELETE.
    """

    columns: dict[str, Column]
    unique: dict[str, tuple[str, ...]] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ("id",)
    checks: tuple[Check, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    yacht_column: str = "yacht_id"
    write_policy: Callable[[Row, str], bool] | None = None
    yacht_can_select: bool = True
    yacht_can_delete: bool = False
    anon_granted: bool = True
    touch_updated_at: bool = False  # a BEFORE UPDATE trigger sets updated_at

    def constraints(self, name: str) -> dict[str, tuple[str, ...]]:
        return {f"{name}_pkey": self.primary_key, **self.unique}


def _ids(*, generated: bool = True) -> dict[str, Column]:
    return {"id": Column("uuid", nullable=False, generated="uuid" if generated else None)}


def _stamps(*names: str) -> dict[str, Column]:
    return {n: Column("timestamptz", nullable=False, generated="now") for n in names}


def _one_of(column: str, *values: str) -> Callable[[Row], bool]:
    return lambda row: row.get(column) is None or row[column] in values


def _not_negative(*columns: str) -> Callable[[Row], bool]:
    return lambda row: all(row.get(c) is None or row[c] >= 0 for c in columns)


def _first_folder(path: object) -> str:
    return str(path).split("/", 1)[0]


def _doc_metadata_policy(row: Row, yacht: str) -> bool:
    return row.get("storage_path") is not None and _first_folder(row["storage_path"]) == yacht


def _search_index_policy(row: Row, yacht: str) -> bool:
    payload = row.get("payload")
    storage_path = payload.get("storage_path") if isinstance(payload, dict) else None
    path = f"{yacht}/" if storage_path is None else storage_path
    return row.get("org_id") == row.get("yacht_id") and _first_folder(path) == yacht


_CONNECTION_FKEY = ("connection_id", "yacht_id"), "onedrive_connections", ("id", "yacht_id")

# The schema as supabase/migrations (2026-11-25) and the pipeline's tables (tests/sql/stubs.sql)
# define it. Keep the two in step: this dict is the sim's whole idea of the database.
TABLES: dict[str, Table] = {
    "doc_metadata": Table(
        columns={
            **_ids(),
            "yacht_id": Column("uuid", nullable=False),
            "source": Column("text", nullable=False),
            "source_id": Column("text"),
            "filename": Column("text", nullable=False),
            "storage_path": Column("text", nullable=False),
            "storage_bucket": Column("text"),
            "original_path": Column("text"),
            "content_type": Column("text"),
            "size_bytes": Column("bigint"),
            "sha256": Column("text"),
            "system_path": Column("text"),
            "doc_type": Column("text"),
            "system_type": Column("text"),
            "metadata": Column("jsonb"),
            "deleted_at": Column("timestamptz"),
            **_stamps("created_at", "updated_at"),
        },
        unique={"doc_metadata_yacht_source_source_id_key": ("yacht_id", "source", "source_id")},
        write_policy=_doc_metadata_policy,
    ),
    "search_index": Table(
        columns={
            **_ids(),
            "object_type": Column("text", nullable=False),
            "object_id": Column("uuid", nullable=False),
            "org_id": Column("uuid"),
            "yacht_id": Column("uuid"),
            "search_text": Column("text"),
            "payload": Column("jsonb"),
            "embedding_status": Column("text"),
            **_stamps("created_at", "updated_at"),
        },
        unique={"search_index_object_type_object_id_key": ("object_type", "object_id")},
        write_policy=_search_index_policy,
    ),
    "onedrive_connections": Table(
        columns={
            **_ids(),
            "yacht_id": Column("uuid", nullable=False),
            "user_principal_name": Column("text", nullable=False),
            "tenant_id": Column("text"),
            "sync_enabled": Column("boolean", nullable=False, default=True),
            "selected_folders": Column("jsonb", nullable=False, default=[]),
            "app_version": Column("text"),
            **_stamps("created_at", "updated_at"),
            "last_sync_at": Column("timestamptz"),
        },
        unique={
            "onedrive_connections_yacht_upn_key": ("yacht_id", "user_principal_name"),
            "onedrive_connections_id_yacht_key": ("id", "yacht_id"),
        },
        checks=(
            Check(
                "onedrive_connections_selected_folders_is_array",
                lambda row: row.get("selected_folders") is None or isinstance(row["selected_folders"], list),
            ),
        ),
        anon_granted=False,
        touch_updated_at=True,
    ),
    "onedrive_sync_state": Table(
        columns={
            **_ids(),
            "connection_id": Column("uuid", nullable=False),
            "yacht_id": Column("uuid", nullable=False),
            "onedrive_drive_id": Column("text", nullable=False),
            "onedrive_item_id": Column("text", nullable=False),
            "onedrive_path": Column("text"),
            "file_name": Column("text"),
            "file_size": Column("bigint"),
            "onedrive_etag": Column("text"),
            "onedrive_ctag": Column("text"),
            "quick_xor_hash": Column("text"),
            "sha256": Column("text"),
            "storage_bucket": Column("text"),
            "storage_path": Column("text"),
            "sync_status": Column("text", nullable=False, default="pending"),
            "last_error": Column("text"),
            "extracted_metadata": Column("jsonb"),
            "synced_at": Column("timestamptz"),
            **_stamps("created_at", "updated_at"),
        },
        unique={
            "onedrive_sync_state_item_key": ("connection_id", "onedrive_drive_id", "onedrive_item_id"),
        },
        checks=(
            Check(
                "onedrive_sync_state_status_check",
                _one_of("sync_status", "pending", "syncing", "completed", "failed", "skipped", "deleted"),
            ),
            Check("onedrive_sync_state_file_size_check", _not_negative("file_size")),
        ),
        foreign_keys=(ForeignKey("onedrive_sync_state_connection_fkey", *_CONNECTION_FKEY),),
        anon_granted=False,
        touch_updated_at=True,
    ),
    "onedrive_sync_jobs": Table(
        columns={
            **_ids(generated=False),  # the app generates it, so a retried POST is idempotent
            "connection_id": Column("uuid", nullable=False),
            "yacht_id": Column("uuid", nullable=False),
            "job_status": Column("text", nullable=False, default="pending"),
            "total_files_found": Column("integer", nullable=False, default=0),
            "files_succeeded": Column("integer", nullable=False, default=0),
            "files_failed": Column("integer", nullable=False, default=0),
            "files_skipped": Column("integer", nullable=False, default=0),
            "bytes_downloaded": Column("bigint", nullable=False, default=0),
            "bytes_uploaded": Column("bigint", nullable=False, default=0),
            "started_at": Column("timestamptz", nullable=False, generated="now"),
            "completed_at": Column("timestamptz"),
            "error_summary": Column("text"),
            "updated_at": Column("timestamptz", nullable=False, generated="now"),
        },
        checks=(
            Check(
                "onedrive_sync_jobs_status_check",
                _one_of("job_status", "pending", "running", "completed", "failed", "cancelled", "partial"),
            ),
            Check(
                "onedrive_sync_jobs_counts_check",
                _not_negative(
                    "total_files_found", "files_succeeded", "files_failed", "files_skipped",
                    "bytes_downloaded", "bytes_uploaded",
                ),
            ),
        ),
        foreign_keys=(ForeignKey("onedrive_sync_jobs_connection_fkey", *_CONNECTION_FKEY),),
        anon_granted=False,
        touch_updated_at=True,
    ),
}


@dataclass
class PgError(Exception):
    """A Postgres or PostgREST error as PostgREST renders it."""

    code: str
    message: str
    details: str | None = None
    hint: str | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def response(self, *, anonymous: bool = False) -> Response:
        status = self.status or _STATUS.get(self.code, 400)
        if self.code == "42501" and anonymous:
            status = 401  # PostgREST: insufficient privilege without a JWT role is 401
        body = {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}
        return Response.json(body, status, self.headers)


def rls_error(table: str, *, using: bool = False) -> PgError:
    kind = " (USING expression)" if using else ""
    return PgError("42501", f'new row violates row-level security policy{kind} for table "{table}"')


def permission_denied(table: str) -> PgError:
    return PgError("42501", f"permission denied for table {table}")


def unknown_column(table: str, column: str) -> PgError:
    return PgError("PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache")


def now_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def coerce(column: Column, value: Any) -> Any:
    """A JSON value as Postgres would store it in ``column`` (normalised), or PgError 22P02."""
    if value is None:
        return None
    kind = column.type
    if kind == "jsonb":
        return value
    if kind == "text":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value) if isinstance(value, dict | list) else str(value)
    text = value if isinstance(value, str) else json.dumps(value)
    if kind == "uuid" and isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    elif kind in ("integer", "bigint") and not isinstance(value, bool | float):
        try:
            number = int(value)
        except ValueError:
            pass
        else:
            if not -_INT_RANGE[kind] <= number < _INT_RANGE[kind]:
                raise PgError("22003", f'value "{text}" is out of range for type {kind}')
            return number
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        lowered = text.strip().lower()
        if lowered in ("true", "t", "yes", "on", "1", "false", "f", "no", "off", "0"):
            return lowered in ("true", "t", "yes", "on", "1")
    elif kind == "timestamptz" and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)  # Supabase sessions run in UTC
            return moment.astimezone(UTC).isoformat()
    code = "22007" if kind == "timestamptz" else "22P02"
    raise PgError(code, f'invalid input syntax for type {_TYPE_NAMES.get(kind, kind)}: "{text}"')


def sort_key(column: Column, value: Any) -> Any:
    """A comparable form of a stored value (timestamps as instants, JSON as text)."""
    if column.type == "timestamptz" and isinstance(value, str):
        return datetime.fromisoformat(value)
    if column.type == "jsonb":
        return json.dumps(value, sort_keys=True)
    return value
