"""The SQLite engine: connection pragmas, explicit BEGIN, and what counts as a damaged file.

Pragmas, on every connection:

- ``journal_mode=WAL``: readers never block the writer, so the GUI and a scheduled CLI run can
  share the state, and a commit is one append to the ``-wal`` file.
- ``synchronous=NORMAL``: in WAL mode a commit is written to the operating system before
  ``COMMIT`` returns but only fsynced at checkpoints. A killed *process* (crash, Task Manager,
  SIGKILL) therefore loses nothing it committed; only a power cut or OS crash can lose the
  last few commits, and even then the database stays consistent (never corrupt). ``FULL``
  would fsync on every commit, costing milliseconds to tens of milliseconds on a bridge PC's
  disk for each small write the engine makes from its event loop; losing the last moments of
  progress to a power cut only means redoing a little idempotent work.
- ``foreign_keys=ON``: SQLite leaves them off unless asked, per connection.
- ``busy_timeout=5000``: a writer waits up to 5 s for another process's transaction.

Transactions: ``sqlite3``'s legacy mode would not BEGIN before SELECTs or DDL, so it is
switched off and SQLAlchemy's ``begin`` event emits ``BEGIN`` itself: ``BEGIN IMMEDIATE`` for
writes (take the write lock up front, so a read-then-write never fails with SQLITE_BUSY half
way, which busy_timeout cannot retry) and a deferred ``BEGIN`` for reads (a consistent snapshot).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

__all__ = ["BUSY_TIMEOUT_MS", "damage_reason", "make_engine", "read_connection", "write_connection"]

BUSY_TIMEOUT_MS = 5000
_BEGIN_OPTION = "celeste_begin"
# SQLite's result codes meaning "this file is not a sound database" (as opposed to locked, full…).
_DAMAGE_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def make_engine(path: Path) -> Engine:
    """One engine per database file, shared by every thread of the process."""
    engine = create_engine(
        f"sqlite:///{path}",
        # The pool hands a connection to one thread at a time; sharing across threads is safe.
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Legacy transaction control off: we emit BEGIN ourselves (see the module docstring).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first, so that switching to WAL can wait for a lock too.
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside ``BEGIN IMMEDIATE``; commits on success, rolls back on error."""
    with engine.connect() as conn:
        conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            yield conn


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a deferred transaction: one consistent snapshot for several reads."""
    with engine.connect() as conn, conn.begin():
        yield conn


def damage_reason(error: BaseException) -> str | None:
    """What SQLite said if ``error`` means the file is damaged or not a database, else None.

    Locked, busy, read-only or full are *not* damage: moving the file aside for those would
    throw good state away.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sqlite3.DatabaseError):
            name = getattr(seen, "sqlite_errorname", "")
            return f"{name}: {seen}" if name in _DAMAGE_CODES else None
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None
