"""Opening the state: engine, crash recovery at start-up, migrations; the ``StateDB`` facade.

``open_state`` never fails because the file is damaged: a database that SQLite calls corrupt,
or a file that is not a database at all, is moved aside (with its ``-wal`` and ``-shm``) as
``state.sqlite3.corrupt-<UTC time>`` and a fresh state is started; ``StateDB.recovery`` then
carries a notice for the user. The damaged copy stays for support. A fresh state costs no
satellite bytes that matter: the next sync re-lists the drives and re-checks every file
against storage before sending anything.

What it does raise: :class:`StateTooNew` (a newer app wrote the file; nothing is touched), and
:class:`StateUnavailable` for what no rebuild could fix (disk full, no permission, the file
held by another program).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from celeste_desktop.store.migrations import CURRENT_VERSION, migrate
from celeste_desktop.store.records import RecoveryNotice, StateUnavailable
from celeste_desktop.store.repo_files import FilesRepository
from celeste_desktop.store.repo_index import IndexRepository
from celeste_desktop.store.repo_jobs import JobsRepository
from celeste_desktop.store.sqlite import BUSY_TIMEOUT_MS, damage_reason, make_engine

__all__ = ["StateDB", "open_state"]

_log = logging.getLogger(__name__)
# A rollback journal too: a database from before WAL was switched on may have a hot one.
_SIDECARS = ("-wal", "-shm", "-journal")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class StateDB(IndexRepository, FilesRepository, JobsRepository):
    """The app's local state: one per process, shared by every thread.

    Every method is a short transaction of its own (a few milliseconds: fine to call from the
    event loop); the bulk ones (``upsert_items``, ``load_items``, ``add_manifest_rows``) take
    iterables and belong in ``asyncio.to_thread``. ``batch()`` groups calls into one transaction.
    """

    def __init__(
        self,
        engine: Engine,
        path: Path,
        *,
        now: Callable[[], datetime] = _utc_now,
        recovery: RecoveryNotice | None = None,
    ) -> None:
        super().__init__(engine, now)
        self.path = path
        self.recovery = recovery  # set when a damaged state was moved aside at start-up
        self.schema_version = CURRENT_VERSION

    def integrity_check(self) -> list[str]:
        """SQLite's full integrity check: ``["ok"]`` when sound (slow on big files: diagnostics)."""
        with self._engine.connect() as conn:
            return [str(line) for line in conn.exec_driver_sql("PRAGMA integrity_check").scalars()]

    def close(self) -> None:
        """Let SQLite refresh its planner statistics, then close every pooled connection."""
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA optimize")
        except DBAPIError as error:  # best effort: closing must not fail on a busy database
            _log.debug("PRAGMA optimize skipped: %s", error.orig)
        finally:
            self._engine.dispose()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_state(path: Path, *, now: Callable[[], datetime] = _utc_now) -> StateDB:
    """Open (creating, checking, recovering and upgrading as needed) the state at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        recovery: RecoveryNotice | None = None
        reason = _damage(path)
        if reason is not None:
            moved_to = _move_aside(path, now())
            _log.warning("local state was damaged (%s); moved to %s and started afresh", reason, moved_to.name)
            recovery = RecoveryNotice(moved_to=moved_to, reason=reason)
        engine = make_engine(path)
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
    except (OSError, sqlite3.Error, DBAPIError) as error:
        raise StateUnavailable(
            f"The local sync state cannot be opened ({_describe(error)}). Check that the disk has free "
            "space and that this folder can be written, then start the app again.",
            path=str(path),
        ) from error
    return StateDB(engine, path, now=now, recovery=recovery)


def _describe(error: BaseException) -> str:
    original = getattr(error, "orig", None)
    return str(original if original is not None else error)


def _damage(path: Path) -> str | None:
    """Why the database at ``path`` is unusable (``quick_check`` failed, not a database…), or None.

    The probe is a plain read-only sqlite3 connection on purpose: closing a read-write one
    makes SQLite checkpoint and delete the ``-wal``/``-shm`` files, even of a file it could not
    read, and those are evidence (or committed data) to keep with the damaged copy.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None  # nothing yet: SQLite makes a new database
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as error:
        reason = damage_reason(error)
        if reason is None:
            raise
        return reason
    try:
        findings = [str(row[0]) for row in probe.execute("PRAGMA quick_check")]
        # quick_check reads pages, not the schema's SQL: make sure that parses too.
        probe.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    except sqlite3.Error as error:
        reason = damage_reason(error)
        if reason is None:
            raise
        return reason
    finally:
        probe.close()
    if findings != ["ok"]:
        return "quick_check: " + "; ".join(findings[:5])
    return None


def _move_aside(path: Path, moment: datetime) -> Path:
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():  # two recoveries within one second
        counter += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    # The sidecars go first and keep their suffixes, so SQLite finds them next to the copy.
    for suffix in _SIDECARS:
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            os.replace(sidecar, target.with_name(target.name + suffix))
    os.replace(path, target)
    return target
