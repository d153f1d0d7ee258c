"""Schema migrations: an ordered list, one transaction each, the version in ``PRAGMA user_version``.

Alembic fits a server with a deploy step; a desktop app upgrades whatever file it finds at
start-up, unattended, so this is the small equivalent: each :class:`Migration` has a version,
a description and a function that takes a Connection already inside ``BEGIN IMMEDIATE``.
SQLite's DDL is transactional and ``user_version`` lives in the database header, so a
migration and its version bump commit together or not at all: a kill mid-upgrade leaves the
previous version, and the next start runs the migration again. Two processes starting at once
serialise on the write lock and the second finds the work done.

Writing a migration: never edit a released one; append. The DDL is frozen text, not
``schema.py`` (which describes only the latest version). ``foreign_keys`` is ON, so a
migration that rebuilds a table (SQLite's 12-step ALTER) must ``PRAGMA defer_foreign_keys=ON``
first; every migration ends with ``PRAGMA foreign_key_check``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from celeste_desktop.store.records import StateTooNew
from celeste_desktop.store.sqlite import write_connection

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "Migration", "migrate", "schema_version"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _run(conn: Connection, statements: tuple[str, ...]) -> None:
    for statement in statements:
        conn.exec_driver_sql(statement)


_V1 = (
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE drives (
        drive_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        owner TEXT,
        site_id TEXT,
        web_url TEXT,
        delta_mode TEXT NOT NULL DEFAULT 'folder' CHECK (delta_mode IN ('folder', 'root')),
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE selection (
        drive_id TEXT NOT NULL REFERENCES drives (drive_id) ON DELETE CASCADE,
        item_id TEXT NOT NULL,
        included INTEGER NOT NULL,
        urgent INTEGER NOT NULL DEFAULT 0,
        path TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (drive_id, item_id)
    )""",
    """CREATE TABLE items (
        drive_id TEXT NOT NULL REFERENCES drives (drive_id) ON DELETE CASCADE,
        item_id TEXT NOT NULL,
        parent_id TEXT,
        name TEXT NOT NULL,
        is_folder INTEGER NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        etag TEXT,
        ctag TEXT,
        quickxor TEXT,
        mime_type TEXT,
        modified TEXT,
        web_url TEXT,
        package_type TEXT,
        malware INTEGER NOT NULL DEFAULT 0,
        is_root INTEGER NOT NULL DEFAULT 0,
        child_count INTEGER,
        PRIMARY KEY (drive_id, item_id)
    )""",
    "CREATE INDEX items_by_parent ON items (drive_id, parent_id)",
    """CREATE TABLE delta_cursors (
        drive_id TEXT NOT NULL REFERENCES drives (drive_id) ON DELETE CASCADE,
        scope_item_id TEXT NOT NULL DEFAULT '',
        next_link TEXT,
        delta_link TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (drive_id, scope_item_id)
    )""",
    # No foreign key to drives: what was delivered outlives the drive being unselected (its
    # registrations still have to be soft-deleted).
    """CREATE TABLE files (
        drive_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'downloading', 'uploading', 'registering',
                                             'done', 'failed', 'dead', 'skipped')),
        storage_key TEXT,
        ctag TEXT,
        quickxor TEXT,
        size INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT,
        folder_path TEXT NOT NULL DEFAULT '[]',
        name TEXT NOT NULL DEFAULT '',
        registered INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        delivered_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (drive_id, item_id)
    )""",
    """CREATE TABLE transfers (
        drive_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        source_ctag TEXT,
        source_quickxor TEXT,
        source_size INTEGER NOT NULL,
        spool_path TEXT NOT NULL,
        download_offset INTEGER NOT NULL DEFAULT 0 CHECK (download_offset >= 0),
        download_complete INTEGER NOT NULL DEFAULT 0,
        tus_url TEXT,
        tus_offset INTEGER NOT NULL DEFAULT 0 CHECK (tus_offset >= 0),
        upload_key TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (drive_id, item_id)
    )""",
    """CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'partial',
                                               'failed', 'cancelled')),
        dry_run INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        error TEXT,
        files_found INTEGER NOT NULL DEFAULT 0,
        files_succeeded INTEGER NOT NULL DEFAULT 0,
        files_failed INTEGER NOT NULL DEFAULT 0,
        files_skipped INTEGER NOT NULL DEFAULT 0,
        bytes_downloaded INTEGER NOT NULL DEFAULT 0,
        bytes_uploaded INTEGER NOT NULL DEFAULT 0,
        owner TEXT
    )""",
    "CREATE INDEX jobs_by_start ON jobs (started_at)",
    """CREATE TABLE job_files (
        job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        drive_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        path TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'relocated', 'deleted', 'skipped',
                                                 'failed')),
        reason TEXT NOT NULL DEFAULT '',
        size INTEGER NOT NULL DEFAULT 0,
        sha256 TEXT,
        quickxor TEXT,
        storage_key TEXT,
        registration_id TEXT,
        at TEXT NOT NULL,
        PRIMARY KEY (job_id, drive_id, item_id)
    )""",
    # AUTOINCREMENT, not a plain rowid: a seq is never reused after its row is acked and
    # deleted, so a late duplicate ack can never remove a newer entry.
    """CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        payload TEXT NOT NULL,
        conflict TEXT NOT NULL DEFAULT '',
        dedupe_key TEXT,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    )""",
    "CREATE INDEX outbox_by_key ON outbox (target, dedupe_key) WHERE dedupe_key IS NOT NULL",
    """CREATE TABLE problems (
        drive_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('failed', 'dead_letter', 'skipped', 'note')),
        code TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        web_url TEXT,
        path TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (drive_id, item_id)
    )""",
)

# Version 2 came with the ship issue: the data budget needs bytes per day; the scheduler asks
# "which retries are due" every few seconds, which scanned every file row; and the job history
# shows how often a job was interrupted by a kill or a restart.
_V2 = (
    """CREATE TABLE usage (
        day TEXT PRIMARY KEY CHECK (length(day) = 10),
        bytes_sent INTEGER NOT NULL DEFAULT 0 CHECK (bytes_sent >= 0),
        bytes_received INTEGER NOT NULL DEFAULT 0 CHECK (bytes_received >= 0)
    )""",
    "CREATE INDEX files_by_retry ON files (state, next_attempt_at)",
    "ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN interrupted_at TEXT",
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "first schema", lambda conn: _run(conn, _V1)),
    Migration(2, "data usage per day, retry index, job interruptions", lambda conn: _run(conn, _V2)),
)
CURRENT_VERSION = MIGRATIONS[-1].version


def schema_version(conn: Connection) -> int:
    version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
    return int(version)


def _refuse_newer(version: int) -> None:
    if version > CURRENT_VERSION:
        raise StateTooNew(
            f"The local sync state was written by a newer version of CelesteOS Desktop (schema "
            f"{version}; this version understands up to {CURRENT_VERSION}). Install the newer "
            "version again, or start this one with a different --home folder."
        )


def migrate(engine: Engine, *, target: int = CURRENT_VERSION) -> int:
    """Bring the database up to ``target`` (default: the latest); return the version reached.

    Raises :class:`StateTooNew` for a database from a newer version, touching nothing.
    """
    for migration in MIGRATIONS:
        if migration.version > target:
            break
        with write_connection(engine) as conn:
            version = schema_version(conn)
            _refuse_newer(version)
            if version >= migration.version:
                continue  # done before, or by another process that got the lock first
            if version != migration.version - 1:  # pragma: no cover - the list is contiguous
                raise RuntimeError(f"state schema {version} cannot take migration {migration.version}")
            migration.apply(conn)
            # PRAGMA takes no bound parameters; the version is an int from the list above.
            conn.exec_driver_sql(f"PRAGMA user_version = {int(migration.version)}")
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration {migration.version} left broken foreign keys: {broken[:5]}")
    with engine.connect() as conn:
        version = schema_version(conn)
    _refuse_newer(version)
    return version
