"""The current schema as SQLAlchemy Core tables, for building queries, and the column types.

These tables describe the *latest* migration; they never create anything (migrations.py owns
the DDL, frozen per version). A test checks that a migrated database matches them.

Timestamps are stored as fixed-width ISO-8601 UTC text (``2024-05-01T12:00:00.000000Z``):
readable by a support engineer opening the file, and ordered correctly by plain comparison.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Dialect,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "DayText",
    "JsonDict",
    "PathTuple",
    "UtcDateTime",
    "delta_cursors",
    "drives",
    "files",
    "format_utc",
    "items",
    "job_files",
    "jobs",
    "meta",
    "metadata",
    "outbox",
    "problems",
    "selection",
    "transfers",
    "usage",
]


def format_utc(moment: datetime) -> str:
    """The stored form of a timestamp; refuses naive datetimes (their zone is a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp without a time zone: {moment!r}")
    # isoformat is several times faster than strftime, which matters for 100k-item upserts.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else format_utc(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


class DayText(TypeDecorator[date]):
    """A calendar day as ``YYYY-MM-DD``."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: date | None, dialect: Dialect) -> str | None:
        return None if value is None else value.isoformat()

    def process_result_value(self, value: Any | None, dialect: Dialect) -> date | None:
        return None if value is None else date.fromisoformat(value)


class PathTuple(TypeDecorator[tuple[str, ...]]):
    """A folder path (tuple of names) as a JSON array: names may hold any character but NUL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: tuple[str, ...] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(list(value), ensure_ascii=False)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> tuple[str, ...] | None:
        return None if value is None else tuple(json.loads(value))


class JsonDict(TypeDecorator[dict[str, Any]]):
    """A JSON object (outbox payloads)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> dict[str, Any] | None:
        if value is None:
            return None
        loaded = json.loads(value)
        if not isinstance(loaded, dict):
            raise ValueError("outbox payload is not a JSON object")
        return loaded


metadata = MetaData()

# Key/value facts about the connection: account UPN, tenant id, home account id. Never tokens.
meta = Table(
    "meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
)

drives = Table(
    "drives",
    metadata,
    Column("drive_id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("owner", String),
    Column("site_id", String),
    Column("web_url", String),
    Column("delta_mode", String, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

selection = Table(
    "selection",
    metadata,
    Column("drive_id", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("included", Boolean, nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("path", String, nullable=False),
)

# The drive-item index (RemoteItem); column order matches RemoteItem's fields after drive_id.
items = Table(
    "items",
    metadata,
    Column("drive_id", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("parent_id", String),
    Column("name", String, nullable=False),
    Column("is_folder", Boolean, nullable=False),
    Column("size", Integer, nullable=False),
    Column("etag", String),
    Column("ctag", String),
    Column("quickxor", String),
    Column("mime_type", String),
    Column("modified", UtcDateTime),
    Column("web_url", String),
    Column("package_type", String),
    Column("malware", Boolean, nullable=False),
    Column("is_root", Boolean, nullable=False),
    Column("child_count", Integer),
)

delta_cursors = Table(
    "delta_cursors",
    metadata,
    Column("drive_id", String, primary_key=True),
    Column("scope_item_id", String, primary_key=True),
    Column("next_link", String),
    Column("delta_link", String),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Per-file sync state; the delivered_* facts (storage_key onwards) are what DeliveredFile holds.
files = Table(
    "files",
    metadata,
    Column("drive_id", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("state", String, nullable=False),
    Column("storage_key", String),
    Column("ctag", String),
    Column("quickxor", String),
    Column("size", Integer, nullable=False),
    Column("sha256", String),
    Column("folder_path", PathTuple, nullable=False),
    Column("name", String, nullable=False),
    Column("registered", Boolean, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("delivered_at", UtcDateTime),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime),
    Column("last_error", String),
    Column("updated_at", UtcDateTime, nullable=False),
)

transfers = Table(
    "transfers",
    metadata,
    Column("drive_id", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("source_ctag", String),
    Column("source_quickxor", String),
    Column("source_size", Integer, nullable=False),
    Column("spool_path", String, nullable=False),
    Column("download_offset", Integer, nullable=False),
    Column("download_complete", Boolean, nullable=False),
    Column("tus_url", String),
    Column("tus_offset", Integer, nullable=False),
    Column("upload_key", String),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String, primary_key=True),
    Column("status", String, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("error", String),
    Column("files_found", Integer, nullable=False),
    Column("files_succeeded", Integer, nullable=False),
    Column("files_failed", Integer, nullable=False),
    Column("files_skipped", Integer, nullable=False),
    Column("bytes_downloaded", Integer, nullable=False),
    Column("bytes_uploaded", Integer, nullable=False),
    Column("owner", String),  # the StateDB session running it; see interrupted_jobs()
    Column("interruptions", Integer, nullable=False),  # since version 2
    Column("interrupted_at", UtcDateTime),  # since version 2
)

# The delivery manifest: one row per (job, file), the file's final outcome in that job.
job_files = Table(
    "job_files",
    metadata,
    Column("job_id", String, primary_key=True),
    Column("drive_id", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("path", String, nullable=False),
    Column("outcome", String, nullable=False),
    Column("reason", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String),
    Column("quickxor", String),
    Column("storage_key", String),
    Column("registration_id", String),
    Column("at", UtcDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("target", String, nullable=False),
    Column("payload", JsonDict, nullable=False),
    Column("conflict", String, nullable=False),
    Column("dedupe_key", String),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String),
)

problems = Table(
    "problems",
    metadata,
    Column("drive_id", String, primary_key=True),
    Column("item_id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("code", String, nullable=False),
    Column("message", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("web_url", String),
    Column("path", String, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Since version 2: bytes over the link per day, for the data budget.
usage = Table(
    "usage",
    metadata,
    Column("day", DayText, primary_key=True),
    Column("bytes_sent", Integer, nullable=False),
    Column("bytes_received", Integer, nullable=False),
)
