"""Per-file sync state, what was delivered, failures with growing retry delays, per-file problems
and transfer checkpoints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update
from sqlalchemy.dialects.sqlite import insert

from celeste_desktop.domain.models import DeliveredFile, FileProblem, FileProblemKind
from celeste_desktop.store.base import StoreBase
from celeste_desktop.store.records import FileState, TransferCheckpoint
from celeste_desktop.store.repo_index import BULK_CHUNK, chunked
from celeste_desktop.store.schema import files, problems, transfers

__all__ = ["DEFAULT_MAX_ATTEMPTS", "FilesRepository", "retry_delay"]

DEFAULT_MAX_ATTEMPTS = 10
_FIRST_DELAY = timedelta(minutes=1)
_MAX_DELAY = timedelta(hours=1)
# Problems that a successful delivery makes obsolete (a NOTE describes the delivery itself).
_CLEARED_BY_SUCCESS = (FileProblemKind.FAILED.value, FileProblemKind.DEAD_LETTER.value, FileProblemKind.SKIPPED.value)

# A file's row before anything is known about it.
_NEW_FILE: dict[str, Any] = {
    "state": FileState.PENDING.value,
    "size": 0,
    "folder_path": (),
    "name": "",
    "registered": False,
    "deleted": False,
    "attempts": 0,
}
_DELIVERED_SELECT = select(
    files.c.item_id,
    files.c.storage_key,
    files.c.ctag,
    files.c.quickxor,
    files.c.size,
    files.c.sha256,
    files.c.folder_path,
    files.c.name,
    files.c.registered,
    files.c.deleted,
    files.c.delivered_at,
)
_PROBLEM_SELECT = select(
    problems.c.drive_id,
    problems.c.item_id,
    problems.c.path,
    problems.c.kind,
    problems.c.code,
    problems.c.message,
    problems.c.attempts,
    problems.c.web_url,
    problems.c.updated_at,
)


def retry_delay(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 1, 2, 4, 8… minutes, never more than an hour."""
    if attempts < 1:
        return timedelta(0)
    # Cap the exponent before computing, so attempt 1000 does not build a huge number.
    return min(_FIRST_DELAY * (1 << min(attempts - 1, 16)), _MAX_DELAY)


def _problem(row: Any) -> FileProblem:
    drive_id, item_id, path, kind, code, message, attempts, web_url, updated_at = row
    return FileProblem(
        drive_id=drive_id,
        item_id=item_id,
        path=path,
        kind=FileProblemKind(kind),
        code=code,
        message=message,
        attempts=attempts,
        web_url=web_url,
        updated_at=updated_at,
    )


class FilesRepository(StoreBase):
    # -- per-file state ----------------------------------------------------------------------

    def _upsert_file(self, conn: Connection, drive_id: str, item_id: str, values: dict[str, Any]) -> None:
        """Create the file's row with defaults if needed, then set ``values``."""
        stamped = {**values, "updated_at": self._now()}
        statement = insert(files).values({**_NEW_FILE, **stamped, "drive_id": drive_id, "item_id": item_id})
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[files.c.drive_id, files.c.item_id],
                set_={key: statement.excluded[key] for key in stamped},
            )
        )

    def set_file_state(self, drive_id: str, item_id: str, state: FileState) -> None:
        with self._write() as conn:
            self._upsert_file(conn, drive_id, item_id, {"state": state.value})

    def set_file_states(self, drive_id: str, item_ids: Iterable[str], state: FileState) -> None:
        """The same state for many files (e.g. every file of a new plan is pending)."""
        statement = insert(files)
        statement = statement.on_conflict_do_update(
            index_elements=[files.c.drive_id, files.c.item_id],
            set_={"state": statement.excluded.state, "updated_at": statement.excluded.updated_at},
        )
        for chunk in chunked(item_ids, BULK_CHUNK):
            moment = self._now()
            fixed = {**_NEW_FILE, "drive_id": drive_id, "state": state.value, "updated_at": moment}
            rows = [{**fixed, "item_id": item_id} for item_id in chunk]
            with self._write() as conn:
                conn.execute(statement, rows)

    def file_state(self, drive_id: str, item_id: str) -> FileState | None:
        query = select(files.c.state).where(files.c.drive_id == drive_id, files.c.item_id == item_id)
        with self._read() as conn:
            state = conn.execute(query).scalar()
        return None if state is None else FileState(state)

    def file_states(self, drive_id: str) -> dict[str, FileState]:
        query = select(files.c.item_id, files.c.state).where(files.c.drive_id == drive_id)
        with self._read() as conn:
            return {item_id: FileState(state) for item_id, state in conn.execute(query)}

    def files_in_state(self, *states: FileState) -> list[tuple[str, str]]:
        """(drive id, item id) of every file in one of ``states`` (e.g. unfinished at start-up)."""
        query = (
            select(files.c.drive_id, files.c.item_id)
            .where(files.c.state.in_([state.value for state in states]))
            .order_by(files.c.drive_id, files.c.item_id)
        )
        with self._read() as conn:
            return [(drive_id, item_id) for drive_id, item_id in conn.execute(query)]

    # -- what is in storage ------------------------------------------------------------------

    def delivered(self, drive_id: str) -> dict[str, DeliveredFile]:
        """Every file of the drive that has an object in storage (deleted ones included, flagged)."""
        query = _DELIVERED_SELECT.where(files.c.drive_id == drive_id, files.c.storage_key.is_not(None))
        delivered: dict[str, DeliveredFile] = {}
        # The files of one folder share one path tuple; rows are streamed, never all at once.
        paths: dict[tuple[str, ...], tuple[str, ...]] = {}
        with self._read() as conn:
            for item_id, storage_key, ctag, quickxor, size, sha256, row_path, *rest in conn.execute(query):
                folder_path = paths.setdefault(row_path, row_path)
                delivered[item_id] = DeliveredFile(
                    drive_id, item_id, storage_key, ctag, quickxor, size, sha256, folder_path, *rest
                )
        return delivered

    def delivered_file(self, drive_id: str, item_id: str) -> DeliveredFile | None:
        query = _DELIVERED_SELECT.where(
            files.c.drive_id == drive_id, files.c.item_id == item_id, files.c.storage_key.is_not(None)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else DeliveredFile(drive_id, *row)

    def mark_delivered(self, delivered: DeliveredFile) -> None:
        """The file is in storage (and registered if ``delivered.registered``).

        Atomically: the delivered facts replace the old ones, retries reset, the transfer
        checkpoint goes (delete the spool file after this returns) and failure/skip problems
        clear.
        """
        values = {
            "state": FileState.DONE.value,
            "storage_key": delivered.storage_key,
            "ctag": delivered.ctag,
            "quickxor": delivered.quickxor,
            "size": delivered.size,
            "sha256": delivered.sha256,
            "folder_path": tuple(delivered.folder_path),
            "name": delivered.name,
            "registered": delivered.registered,
            "deleted": delivered.deleted,
            "delivered_at": delivered.delivered_at or self._now(),
            "attempts": 0,
            "next_attempt_at": None,
            "last_error": None,
        }
        with self._write() as conn:
            self._upsert_file(conn, delivered.drive_id, delivered.item_id, values)
            _clear_transfer(conn, delivered.drive_id, delivered.item_id)
            _clear_problems(conn, delivered.drive_id, delivered.item_id, _CLEARED_BY_SUCCESS)

    def mark_relocated(
        self,
        drive_id: str,
        item_id: str,
        *,
        storage_key: str,
        folder_path: tuple[str, ...],
        name: str,
        registered: bool = True,
    ) -> None:
        """A rename or move done in storage without moving bytes. Raises LookupError if the file
        was never delivered."""
        self._update_delivered(
            drive_id,
            item_id,
            storage_key=storage_key,
            folder_path=tuple(folder_path),
            name=name,
            registered=registered,
            deleted=False,
        )

    def mark_registered(self, drive_id: str, item_id: str, registered: bool = True) -> None:
        """The pipeline registration now exists (or is known stale/missing, with False)."""
        self._update_delivered(drive_id, item_id, registered=registered)

    def mark_deleted(self, drive_id: str, item_id: str) -> None:
        """Removed upstream or unselected: the registration is soft-deleted."""
        self._update_delivered(drive_id, item_id, deleted=True)

    def _update_delivered(self, drive_id: str, item_id: str, **values: Any) -> None:
        query = (
            update(files)
            .where(files.c.drive_id == drive_id, files.c.item_id == item_id, files.c.storage_key.is_not(None))
            .values(
                state=FileState.DONE.value,
                attempts=0,
                next_attempt_at=None,
                last_error=None,
                updated_at=self._now(),
                **values,
            )
        )
        with self._write() as conn:
            if not conn.execute(query).rowcount:
                raise LookupError(f"file {drive_id}/{item_id} was never delivered")
            _clear_transfer(conn, drive_id, item_id)
            _clear_problems(conn, drive_id, item_id, _CLEARED_BY_SUCCESS)

    def forget_file(self, drive_id: str, item_id: str) -> None:
        """Drop everything kept about one file (state, checkpoint, problem)."""
        with self._write() as conn:
            conn.execute(delete(files).where(files.c.drive_id == drive_id, files.c.item_id == item_id))
            _clear_transfer(conn, drive_id, item_id)
            conn.execute(delete(problems).where(problems.c.drive_id == drive_id, problems.c.item_id == item_id))

    # -- failures, retries, dead letters -----------------------------------------------------

    def record_failure(
        self,
        drive_id: str,
        item_id: str,
        message: str,
        *,
        now: datetime,
        path: str = "",
        code: str = "failed",
        web_url: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> FileProblem:
        """Count one failure; schedule the retry after :func:`retry_delay`, or after
        ``max_attempts`` failures park the file as a dead letter. Returns the problem shown."""
        with self._write() as conn:
            previous = conn.execute(
                select(files.c.attempts).where(files.c.drive_id == drive_id, files.c.item_id == item_id)
            ).scalar()
            attempts = int(previous or 0) + 1
            dead = attempts >= max_attempts
            self._upsert_file(
                conn,
                drive_id,
                item_id,
                {
                    "state": (FileState.DEAD if dead else FileState.FAILED).value,
                    "attempts": attempts,
                    "next_attempt_at": None if dead else now + retry_delay(attempts),
                    "last_error": message,
                },
            )
            problem = FileProblem(
                drive_id=drive_id,
                item_id=item_id,
                path=path,
                kind=FileProblemKind.DEAD_LETTER if dead else FileProblemKind.FAILED,
                code=code,
                message=message,
                attempts=attempts,
                web_url=web_url,
                updated_at=now,
            )
            _upsert_problem(conn, problem)
        return problem

    def due_retries(self, now: datetime) -> list[FileProblem]:
        """Failed files whose retry time has come, earliest first."""
        query = (
            _PROBLEM_SELECT.join(
                files, and_(files.c.drive_id == problems.c.drive_id, files.c.item_id == problems.c.item_id)
            )
            .where(files.c.state == FileState.FAILED.value, files.c.next_attempt_at <= now)
            .order_by(files.c.next_attempt_at, problems.c.path)
        )
        with self._read() as conn:
            return [_problem(row) for row in conn.execute(query)]

    def next_retry_at(self) -> datetime | None:
        """When the earliest pending retry is due (for the scheduler's timer)."""
        query = (
            select(files.c.next_attempt_at)
            .where(files.c.state == FileState.FAILED.value, files.c.next_attempt_at.is_not(None))
            .order_by(files.c.next_attempt_at)
            .limit(1)
        )
        with self._read() as conn:
            earliest: datetime | None = conn.execute(query).scalar()
        return earliest

    def reset_dead_letter(self, drive_id: str | None = None, item_id: str | None = None) -> int:
        """Give parked files (one, one drive's, or all) a fresh start; return how many."""
        condition = files.c.state == FileState.DEAD.value
        if drive_id is not None:
            condition = and_(condition, files.c.drive_id == drive_id)
        if item_id is not None:
            condition = and_(condition, files.c.item_id == item_id)
        with self._write() as conn:
            parked = conn.execute(select(files.c.drive_id, files.c.item_id).where(condition)).all()
            conn.execute(
                update(files)
                .where(condition)
                .values(
                    state=FileState.PENDING.value,
                    attempts=0,
                    next_attempt_at=None,
                    last_error=None,
                    updated_at=self._now(),
                )
            )
            for parked_drive, parked_item in parked:
                _clear_problems(conn, parked_drive, parked_item, (FileProblemKind.DEAD_LETTER.value,))
        return len(parked)

    # -- problems ----------------------------------------------------------------------------

    def problems(self, kinds: Iterable[FileProblemKind] | None = None) -> list[FileProblem]:
        """Per-file problems, worst first (dead letters, failures, skips, notes), then by path."""
        order = {"dead_letter": 0, "failed": 1, "skipped": 2, "note": 3}
        query = _PROBLEM_SELECT
        if kinds is not None:
            query = query.where(problems.c.kind.in_([kind.value for kind in kinds]))
        with self._read() as conn:
            found = [_problem(row) for row in conn.execute(query)]
        return sorted(found, key=lambda problem: (order[problem.kind.value], problem.path, problem.item_id))

    def set_problem(self, problem: FileProblem) -> None:
        """Record a problem (a skip with its reason, a note…); one per file, the last wins."""
        with self._write() as conn:
            _upsert_problem(conn, problem if problem.updated_at else _stamped(problem, self._now()))

    def clear_problem(self, drive_id: str, item_id: str) -> bool:
        with self._write() as conn:
            result = conn.execute(
                delete(problems).where(problems.c.drive_id == drive_id, problems.c.item_id == item_id)
            )
        return bool(result.rowcount)

    # -- transfer checkpoints ----------------------------------------------------------------

    def start_transfer(
        self,
        drive_id: str,
        item_id: str,
        *,
        spool_path: str,
        source_size: int,
        source_ctag: str | None = None,
        source_quickxor: str | None = None,
    ) -> TransferCheckpoint:
        """A fresh checkpoint (replacing any older one) at offset zero."""
        moment = self._now()
        fresh = TransferCheckpoint(
            drive_id=drive_id,
            item_id=item_id,
            source_ctag=source_ctag,
            source_quickxor=source_quickxor,
            source_size=source_size,
            spool_path=spool_path,
            download_offset=0,
            download_complete=False,
            tus_url=None,
            tus_offset=0,
            upload_key=None,
            created_at=moment,
            updated_at=moment,
        )
        with self._write() as conn:
            conn.execute(insert(transfers).values(asdict(fresh)).prefix_with("OR REPLACE"))
        return fresh

    def checkpoint(self, drive_id: str, item_id: str) -> TransferCheckpoint | None:
        query = select(transfers).where(transfers.c.drive_id == drive_id, transfers.c.item_id == item_id)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else TransferCheckpoint(*row)

    def checkpoints(self) -> list[TransferCheckpoint]:
        """Every unfinished transfer (to resume them, and to sweep spool files nobody owns)."""
        with self._read() as conn:
            rows = conn.execute(select(transfers).order_by(transfers.c.created_at)).all()
        return [TransferCheckpoint(*row) for row in rows]

    def save_download_progress(self, drive_id: str, item_id: str, offset: int, *, complete: bool = False) -> None:
        """Bytes ``[0, offset)`` are in the spool (flush the file *before* calling this)."""
        self._update_transfer(drive_id, item_id, download_offset=offset, download_complete=complete)

    def save_tus_progress(
        self, drive_id: str, item_id: str, *, tus_url: str, offset: int, upload_key: str | None = None
    ) -> None:
        """The TUS upload's URL and the offset the server acknowledged."""
        values: dict[str, Any] = {"tus_url": tus_url, "tus_offset": offset}
        if upload_key is not None:
            values["upload_key"] = upload_key
        self._update_transfer(drive_id, item_id, **values)

    def _update_transfer(self, drive_id: str, item_id: str, **values: Any) -> None:
        if values.get("download_offset", 0) < 0 or values.get("tus_offset", 0) < 0:
            raise ValueError("a transfer offset cannot be negative")
        query = (
            update(transfers)
            .where(transfers.c.drive_id == drive_id, transfers.c.item_id == item_id)
            .values(updated_at=self._now(), **values)
        )
        with self._write() as conn:
            if not conn.execute(query).rowcount:
                raise LookupError(f"no transfer checkpoint for {drive_id}/{item_id}; call start_transfer first")

    def clear_checkpoint(self, drive_id: str, item_id: str) -> bool:
        with self._write() as conn:
            return _clear_transfer(conn, drive_id, item_id)


def _stamped(problem: FileProblem, moment: datetime) -> FileProblem:
    return FileProblem(
        drive_id=problem.drive_id,
        item_id=problem.item_id,
        path=problem.path,
        kind=problem.kind,
        code=problem.code,
        message=problem.message,
        attempts=problem.attempts,
        web_url=problem.web_url,
        updated_at=moment,
    )


def _upsert_problem(conn: Connection, problem: FileProblem) -> None:
    row = {
        "drive_id": problem.drive_id,
        "item_id": problem.item_id,
        "kind": problem.kind.value,
        "code": problem.code,
        "message": problem.message,
        "attempts": problem.attempts,
        "web_url": problem.web_url,
        "path": problem.path,
        "updated_at": problem.updated_at,
    }
    conn.execute(insert(problems).values(row).prefix_with("OR REPLACE"))


def _clear_problems(conn: Connection, drive_id: str, item_id: str, kinds: tuple[str, ...]) -> None:
    conn.execute(
        delete(problems).where(
            problems.c.drive_id == drive_id, problems.c.item_id == item_id, problems.c.kind.in_(kinds)
        )
    )


def _clear_transfer(conn: Connection, drive_id: str, item_id: str) -> bool:
    result = conn.execute(delete(transfers).where(transfers.c.drive_id == drive_id, transfers.c.item_id == item_id))
    return bool(result.rowcount)
