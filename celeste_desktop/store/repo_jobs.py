"""Jobs and their delivery manifests, the outbox to shore, and data usage per day."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.sqlite import insert

from celeste_desktop.domain.models import Job, JobCounters, JobStatus
from celeste_desktop.store.base import StoreBase
from celeste_desktop.store.records import ManifestOutcome, ManifestRow, OutboxEntry, UsageDay
from celeste_desktop.store.repo_index import BULK_CHUNK, chunked
from celeste_desktop.store.schema import job_files, jobs, outbox, usage

__all__ = ["JobsRepository"]

_COUNTER_NAMES = (
    "files_found",
    "files_succeeded",
    "files_failed",
    "files_skipped",
    "bytes_downloaded",
    "bytes_uploaded",
)
_JOB_SELECT = select(
    jobs.c.job_id,
    jobs.c.status,
    jobs.c.started_at,
    jobs.c.finished_at,
    jobs.c.error,
    jobs.c.dry_run,
    *(jobs.c[name] for name in _COUNTER_NAMES),
)
_MANIFEST_SELECT = select(
    job_files.c.drive_id,
    job_files.c.item_id,
    job_files.c.path,
    job_files.c.outcome,
    job_files.c.at,
    job_files.c.size,
    job_files.c.sha256,
    job_files.c.quickxor,
    job_files.c.storage_key,
    job_files.c.registration_id,
    job_files.c.reason,
)
_OUTBOX_SELECT = select(
    outbox.c.seq,
    outbox.c.target,
    outbox.c.payload,
    outbox.c.conflict,
    outbox.c.created_at,
    outbox.c.attempts,
    outbox.c.last_error,
    outbox.c.dedupe_key,
)


def _job(row: Sequence[Any]) -> Job:
    job_id, status, started_at, finished_at, error, dry_run, *counters = row
    return Job(
        job_id=job_id,
        status=JobStatus(status),
        started_at=started_at,
        finished_at=finished_at,
        counters=JobCounters(*counters),
        error=error,
        dry_run=dry_run,
    )


class JobsRepository(StoreBase):
    # -- jobs --------------------------------------------------------------------------------

    def start_job(self, job_id: str, *, dry_run: bool = False) -> Job:
        """A new job, running now, owned by this opening of the state."""
        job = Job(job_id=job_id, status=JobStatus.RUNNING, started_at=self._now(), dry_run=dry_run)
        row = {
            "job_id": job_id,
            "status": job.status.value,
            "dry_run": dry_run,
            "started_at": job.started_at,
            "owner": self.session_id,
            "interruptions": 0,
            **{name: 0 for name in _COUNTER_NAMES},
        }
        with self._write() as conn:
            conn.execute(insert(jobs).values(row))
        return job

    def update_job_counters(self, job_id: str, counters: JobCounters) -> None:
        values = {name: getattr(counters, name) for name in _COUNTER_NAMES}
        with self._write() as conn:
            conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(values))

    def finish_job(self, job_id: str, status: JobStatus, error: str | None = None) -> Job:
        with self._write() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(status=status.value, error=error, finished_at=self._now(), owner=None)
            )
            if not result.rowcount:
                raise LookupError(f"no job {job_id}")
            return _job(conn.execute(_JOB_SELECT.where(jobs.c.job_id == job_id)).one())

    def job(self, job_id: str) -> Job | None:
        with self._read() as conn:
            row = conn.execute(_JOB_SELECT.where(jobs.c.job_id == job_id)).first()
        return None if row is None else _job(row)

    def jobs(self, limit: int = 50) -> list[Job]:
        """The most recent jobs, newest first."""
        query = _JOB_SELECT.order_by(jobs.c.started_at.desc(), jobs.c.job_id.desc()).limit(limit)
        with self._read() as conn:
            return [_job(row) for row in conn.execute(query)]

    def last_job(self) -> Job | None:
        recent = self.jobs(limit=1)
        return recent[0] if recent else None

    def interrupted_jobs(self) -> list[Job]:
        """Jobs left ``running`` by an earlier process that was killed or lost power.

        Call it while holding the app's cross-process sync lock (so a live CLI run's job is not
        taken for a dead one), before starting a job. Each such job is marked (its interruption
        counted, adopted by this session); resume it with ``resume_job`` or close it with
        ``finish_job``.
        """
        condition = (jobs.c.status == JobStatus.RUNNING.value) & (
            jobs.c.owner.is_(None) | (jobs.c.owner != self.session_id)
        )
        with self._write() as conn:
            found = [_job(row) for row in conn.execute(_JOB_SELECT.where(condition).order_by(jobs.c.started_at))]
            conn.execute(
                update(jobs)
                .where(condition)
                .values(interruptions=jobs.c.interruptions + 1, interrupted_at=self._now(), owner=self.session_id)
            )
        return found

    def resume_job(self, job_id: str) -> Job:
        """Carry on an interrupted job under this session (status running, counters kept)."""
        with self._write() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(status=JobStatus.RUNNING.value, finished_at=None, owner=self.session_id)
            )
            if not result.rowcount:
                raise LookupError(f"no job {job_id}")
            return _job(conn.execute(_JOB_SELECT.where(jobs.c.job_id == job_id)).one())

    def job_interruptions(self, job_id: str) -> int:
        with self._read() as conn:
            count = conn.execute(select(jobs.c.interruptions).where(jobs.c.job_id == job_id)).scalar()
        return int(count or 0)

    def prune_jobs(self, keep: int = 500) -> int:
        """Delete all but the ``keep`` newest finished jobs, with their manifests."""
        newest = select(jobs.c.job_id).order_by(jobs.c.started_at.desc()).limit(keep)
        with self._write() as conn:
            result = conn.execute(
                delete(jobs).where(jobs.c.status != JobStatus.RUNNING.value, jobs.c.job_id.not_in(newest))
            )
        return int(result.rowcount)

    # -- delivery manifest -------------------------------------------------------------------

    def add_manifest_rows(self, job_id: str, rows: Iterable[ManifestRow]) -> None:
        """Record what happened to files in a job; a file's later row in the same job replaces
        its earlier one (a retry that succeeded is listed as delivered, once)."""
        statement = insert(job_files)
        statement = statement.on_conflict_do_update(
            index_elements=[job_files.c.job_id, job_files.c.drive_id, job_files.c.item_id],
            set_={column.name: statement.excluded[column.name] for column in job_files.c if not column.primary_key},
        )
        for chunk in chunked(rows, BULK_CHUNK):
            values = [
                {
                    "job_id": job_id,
                    "drive_id": row.drive_id,
                    "item_id": row.item_id,
                    "path": row.path,
                    "outcome": row.outcome.value,
                    "reason": row.reason,
                    "size": row.size,
                    "sha256": row.sha256,
                    "quickxor": row.quickxor,
                    "storage_key": row.storage_key,
                    "registration_id": row.registration_id,
                    "at": row.at,
                }
                for row in chunk
            ]
            with self._write() as conn:
                conn.execute(statement, values)

    def manifest(self, job_id: str) -> list[ManifestRow]:
        return list(self.iter_manifest(job_id))

    def iter_manifest(self, job_id: str) -> Iterator[ManifestRow]:
        """The manifest a row at a time, for printing one of 100,000 files without holding it."""
        query = _MANIFEST_SELECT.where(job_files.c.job_id == job_id).order_by(job_files.c.at, job_files.c.path)
        with self._read() as conn:
            for drive_id, item_id, path, outcome, *rest in conn.execute(query):
                yield ManifestRow(drive_id, item_id, path, ManifestOutcome(outcome), *rest)

    def manifest_counters(self, job_id: str) -> JobCounters:
        """A job's counters from its manifest (one row per file), counted by SQLite.

        Delivered rows of a dry run (reason ``would …``) count as files, never as bytes.
        """
        real = ~job_files.c.reason.like("would %")
        delivered = (job_files.c.outcome == ManifestOutcome.DELIVERED.value) & real
        query = select(
            func.count(),
            func.sum(func.iif(job_files.c.outcome == ManifestOutcome.FAILED.value, 1, 0)),
            func.sum(func.iif(job_files.c.outcome == ManifestOutcome.SKIPPED.value, 1, 0)),
            func.sum(func.iif(delivered, job_files.c.size, 0)),
        ).where(job_files.c.job_id == job_id)
        with self._read() as conn:
            found, failed, skipped, delivered_bytes = conn.execute(query).one()
        found, failed, skipped, delivered_bytes = (int(v or 0) for v in (found, failed, skipped, delivered_bytes))
        return JobCounters(
            files_found=found,
            files_succeeded=found - failed - skipped,
            files_failed=failed,
            files_skipped=skipped,
            bytes_downloaded=delivered_bytes,
            bytes_uploaded=delivered_bytes,
        )

    # -- outbox ------------------------------------------------------------------------------

    def enqueue(
        self,
        target: str,
        payload: Mapping[str, Any],
        *,
        conflict: str = "",
        dedupe_key: str | None = None,
    ) -> int:
        """Queue a row for shore; return its sequence number.

        With ``dedupe_key``, an older unsent entry for the same target and key is replaced (the
        newest state of a row is all shore needs: fewer bytes over the satellite).
        """
        with self._write() as conn:
            if dedupe_key is not None:
                conn.execute(delete(outbox).where(outbox.c.target == target, outbox.c.dedupe_key == dedupe_key))
            result = conn.execute(
                insert(outbox).values(
                    target=target,
                    payload=dict(payload),
                    conflict=conflict,
                    dedupe_key=dedupe_key,
                    created_at=self._now(),
                    attempts=0,
                )
            )
            key = result.inserted_primary_key
        if key is None or key[0] is None:  # pragma: no cover - SQLite always reports the rowid
            raise RuntimeError("the outbox did not report the new entry's sequence number")
        return int(key[0])

    def peek_outbox(self, limit: int = 100) -> list[OutboxEntry]:
        """The oldest entries, in order, without removing them (ack them once shore has them)."""
        with self._read() as conn:
            return [OutboxEntry(*row) for row in conn.execute(_OUTBOX_SELECT.order_by(outbox.c.seq).limit(limit))]

    def ack_outbox(self, seqs: Iterable[int]) -> int:
        """Remove entries shore confirmed; acking twice or an unknown seq is harmless."""
        removed = 0
        for chunk in chunked(seqs, 500):
            with self._write() as conn:
                removed += int(conn.execute(delete(outbox).where(outbox.c.seq.in_(chunk))).rowcount)
        return removed

    def record_outbox_failure(self, seq: int, error: str) -> None:
        with self._write() as conn:
            conn.execute(
                update(outbox).where(outbox.c.seq == seq).values(attempts=outbox.c.attempts + 1, last_error=error)
            )

    def outbox_size(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox)).scalar() or 0)

    # -- data usage --------------------------------------------------------------------------

    def add_usage(self, day: date, sent: int = 0, received: int = 0) -> None:
        """Add bytes to a day's totals (atomic: safe from several threads and processes)."""
        if sent < 0 or received < 0:
            raise ValueError("usage cannot be negative")
        statement = insert(usage).values(day=day, bytes_sent=sent, bytes_received=received)
        with self._write() as conn:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[usage.c.day],
                    set_={
                        "bytes_sent": usage.c.bytes_sent + statement.excluded.bytes_sent,
                        "bytes_received": usage.c.bytes_received + statement.excluded.bytes_received,
                    },
                )
            )

    def usage_between(self, start: date, end: date) -> list[UsageDay]:
        """Days from ``start`` to ``end`` inclusive that saw traffic, in order."""
        query = (
            select(usage.c.day, usage.c.bytes_sent, usage.c.bytes_received)
            .where(usage.c.day >= start, usage.c.day <= end)
            .order_by(usage.c.day)
        )
        with self._read() as conn:
            return [UsageDay(*row) for row in conn.execute(query)]

    def usage_total(self, start: date, end: date) -> UsageDay:
        """Sum over ``start``..``end`` inclusive, reported under ``start``."""
        days = self.usage_between(start, end)
        return UsageDay(start, sum(day.bytes_sent for day in days), sum(day.bytes_received for day in days))
