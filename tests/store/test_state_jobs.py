"""Jobs, interrupted jobs, delivery manifests, the outbox and data usage."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from state_factories import START

from celeste_desktop.domain.models import JobCounters, JobStatus
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.store import ManifestOutcome, ManifestRow, StateDB, UsageDay, open_state


def test_job_lifecycle(state: StateDB, clock: FakeClock) -> None:
    assert state.last_job() is None
    job = state.start_job("job-1", dry_run=True)
    assert (job.status, job.started_at, job.dry_run) == (JobStatus.RUNNING, START, True)
    counters = JobCounters(
        files_found=10, files_succeeded=7, files_failed=1, files_skipped=2, bytes_downloaded=1000, bytes_uploaded=900
    )
    state.update_job_counters("job-1", counters)
    clock.advance(90)
    finished = state.finish_job("job-1", JobStatus.PARTIAL, "1 file failed")
    assert finished.status is JobStatus.PARTIAL
    assert finished.finished_at == START + timedelta(seconds=90)
    assert finished.counters == counters
    assert finished.error == "1 file failed"
    assert state.job("job-1") == finished
    assert state.job("nope") is None

    clock.advance(10)
    state.start_job("job-2")
    assert [job.job_id for job in state.jobs()] == ["job-2", "job-1"]
    last = state.last_job()
    assert last is not None and last.job_id == "job-2"
    with pytest.raises(LookupError):
        state.finish_job("nope", JobStatus.FAILED)


def test_a_job_left_running_by_a_killed_process_is_interrupted(state_path: Path, clock: FakeClock) -> None:
    first = open_state(state_path, now=clock.now)
    first.start_job("job-1")
    first.update_job_counters("job-1", JobCounters(files_found=3, files_succeeded=1))
    assert first.interrupted_jobs() == []  # its own running job is not interrupted
    first.engine.dispose()  # the process dies without finishing the job

    clock.advance(3600)
    second = open_state(state_path, now=clock.now)
    try:
        (interrupted,) = second.interrupted_jobs()
        assert interrupted.job_id == "job-1" and interrupted.status is JobStatus.RUNNING
        assert second.job_interruptions("job-1") == 1
        assert second.interrupted_jobs() == []  # marked once, adopted by this session

        resumed = second.resume_job("job-1")
        assert resumed.counters.files_succeeded == 1  # carries on from where it was
        done = second.finish_job("job-1", JobStatus.COMPLETED)
        assert done.status is JobStatus.COMPLETED
    finally:
        second.close()


def test_prune_jobs_keeps_the_newest_and_drops_their_manifests(state: StateDB, clock: FakeClock) -> None:
    for number in range(5):
        state.start_job(f"job-{number}")
        state.add_manifest_rows(f"job-{number}", [_row("a", ManifestOutcome.DELIVERED, clock)])
        state.finish_job(f"job-{number}", JobStatus.COMPLETED)
        clock.advance(60)
    state.start_job("running")
    assert state.prune_jobs(keep=2) == 4
    assert [job.job_id for job in state.jobs()] == ["running", "job-4"]
    assert state.manifest("job-0") == []


def _row(item_id: str, outcome: ManifestOutcome, clock: FakeClock, **extra: object) -> ManifestRow:
    values: dict[str, object] = {
        "drive_id": "d1",
        "item_id": item_id,
        "path": f"Docs/{item_id}.pdf",
        "outcome": outcome,
        "at": clock.now(),
    }
    values.update(extra)
    return ManifestRow(**values)  # type: ignore[arg-type]


def test_manifest_lists_each_file_once_with_its_final_outcome(state: StateDB, clock: FakeClock) -> None:
    state.start_job("job-1")
    failed = _row("a", ManifestOutcome.FAILED, clock, reason="HTTP 503 from storage")
    skipped = _row("s", ManifestOutcome.SKIPPED, clock, reason="OneNote notebook: nothing to download")
    state.add_manifest_rows("job-1", [failed, skipped])
    clock.advance(30)
    delivered = _row(
        "a",
        ManifestOutcome.DELIVERED,
        clock,
        size=4096,
        sha256="cd" * 32,
        quickxor="qx==",
        storage_key="yacht-1/Docs/a.pdf",
        registration_id="9b2f0c1e-0000-5000-8000-000000000001",
    )
    state.add_manifest_rows("job-1", [delivered])
    assert state.manifest("job-1") == [skipped, delivered]
    assert state.manifest("job-2") == []


def test_outbox_keeps_order_and_acks_are_idempotent_across_reopen(state_path: Path, clock: FakeClock) -> None:
    state = open_state(state_path, now=clock.now)
    seqs = [
        state.enqueue("onedrive_sync_state", {"item": n, "name": "Café"}, conflict="connection_id,item")
        for n in range(5)
    ]
    assert seqs == sorted(seqs)
    state.record_outbox_failure(seqs[0], "HTTP 503")
    batch = state.peek_outbox(limit=3)
    assert [entry.payload["item"] for entry in batch] == [0, 1, 2]
    assert (batch[0].attempts, batch[0].last_error, batch[0].conflict) == (1, "HTTP 503", "connection_id,item")
    assert batch[0].payload == {"item": 0, "name": "Café"}
    assert state.ack_outbox(entry.seq for entry in batch) == 3
    state.close()

    reopened = open_state(state_path, now=clock.now)
    try:
        assert reopened.ack_outbox([seqs[0], seqs[1]]) == 0  # a duplicate ack after a restart
        assert reopened.outbox_size() == 2
        new_seq = reopened.enqueue("onedrive_sync_state", {"item": 5})
        assert new_seq > seqs[-1]  # sequence numbers are never reused
        assert [entry.payload["item"] for entry in reopened.peek_outbox()] == [3, 4, 5]
    finally:
        reopened.close()


def test_outbox_dedupe_key_keeps_only_the_newest_state_of_a_row(state: StateDB) -> None:
    state.enqueue("onedrive_sync_state", {"item": "a", "status": "syncing"}, dedupe_key="a")
    state.enqueue("onedrive_sync_jobs", {"job": 1})
    state.enqueue("onedrive_sync_state", {"item": "a", "status": "completed"}, dedupe_key="a")
    state.enqueue("other_table", {"item": "a"}, dedupe_key="a")  # another target: kept
    payloads = [(entry.target, entry.payload) for entry in state.peek_outbox()]
    assert payloads == [
        ("onedrive_sync_jobs", {"job": 1}),
        ("onedrive_sync_state", {"item": "a", "status": "completed"}),
        ("other_table", {"item": "a"}),
    ]


def test_usage_adds_up_per_day(state: StateDB) -> None:
    day1, day2, day3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
    state.add_usage(day1, sent=100, received=1000)
    state.add_usage(day1, sent=50)
    state.add_usage(day3, received=7)
    assert state.usage_between(day1, day3) == [UsageDay(day1, 150, 1000), UsageDay(day3, 0, 7)]
    assert state.usage_between(day2, day2) == []
    assert state.usage_total(day1, day3) == UsageDay(day1, 150, 1007)
    with pytest.raises(ValueError):
        state.add_usage(day1, sent=-1)
