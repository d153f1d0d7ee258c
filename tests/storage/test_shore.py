"""Shore-side status rows through the local outbox: queued while Supabase is unreachable, kept
across an app restart, flushed in order and idempotently when the link is back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from destination_fakes import Dest, MemoryOutbox, SqliteOutbox

from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.domain.models import Job, JobCounters, JobStatus
from celeste_desktop.storage.shore import CONNECTIONS, JOBS, SYNC_STATE, ShoreStatus

UPN = "officer@yacht.example"
JOB_ID = "5b1f7c2e-9d3a-4e6b-8f1c-2a3b4c5d6e7f"
OTHER_YACHT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
STARTED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def job(status: JobStatus, succeeded: int, *, finished: datetime | None = None) -> Job:
    counters = JobCounters(files_found=3, files_succeeded=succeeded, bytes_uploaded=succeeded * 100)
    return Job(JOB_ID, status, STARTED, finished, counters)


def queue_a_sync(shore: ShoreStatus) -> None:
    shore.connection(UPN, tenant_id="tenant-1", selected_folders=["Yacht Docs/02_ENGINEERING"])
    shore.job(UPN, job(JobStatus.RUNNING, 0))
    shore.file_state(UPN, drive_id="b!d", item_id="A", status="syncing", path="02_ENGINEERING/a.pdf", name="a.pdf")
    shore.file_state(UPN, drive_id="b!d", item_id="B", status="completed", path="02_ENGINEERING/b.pdf", name="b.pdf",
                     size=10, storage_path="yacht/b.pdf", synced_at=STARTED)  # fmt: skip
    shore.file_state(UPN, drive_id="b!d", item_id="A", status="completed", path="02_ENGINEERING/a.pdf", name="a.pdf",
                     size=5, storage_path="yacht/a.pdf", synced_at=STARTED)  # fmt: skip
    shore.job(UPN, job(JobStatus.COMPLETED, 2, finished=STARTED))


def assert_synced(dest: Dest) -> None:
    [connection] = dest.sim.supabase.rows(CONNECTIONS)
    assert connection["user_principal_name"] == UPN and connection["yacht_id"] == dest.target.yacht_id
    assert connection["selected_folders"] == ["Yacht Docs/02_ENGINEERING"]
    states = {row["onedrive_item_id"]: row for row in dest.sim.supabase.rows(SYNC_STATE)}
    assert set(states) == {"A", "B"}
    assert all(row["connection_id"] == connection["id"] for row in states.values())
    assert states["A"]["sync_status"] == "completed" and states["A"]["file_size"] == 5  # the latest state won
    [job_row] = dest.sim.supabase.rows(JOBS)
    assert job_row["id"] == JOB_ID and job_row["job_status"] == "completed"
    assert (job_row["files_succeeded"], job_row["bytes_uploaded"], job_row["total_files_found"]) == (2, 200, 3)
    for row in (connection, *states.values(), job_row):
        assert not any("token" in column or "key" in column for column in row)


async def test_status_rows_reach_shore_in_order(dest: Dest) -> None:
    outbox = MemoryOutbox()
    shore = ShoreStatus(outbox, dest.rest())
    queue_a_sync(shore)
    result = await shore.flush()
    assert result.complete and result.sent == 4  # older unsent states of the same rows were replaced
    assert outbox.entries == []
    assert_synced(dest)


async def test_flushing_again_changes_nothing(dest: Dest) -> None:
    shore = ShoreStatus(MemoryOutbox(), dest.rest())
    queue_a_sync(shore)
    await shore.flush()
    queue_a_sync(shore)
    await shore.flush()
    assert_synced(dest)


async def test_rows_wait_offline_survive_a_restart_and_go_when_the_link_is_back(dest: Dest, tmp_path: Path) -> None:
    state = tmp_path / "outbox.sqlite3"
    dead = dest.with_target(url="https://127.0.0.1:9")  # nothing listens there: the link is down
    shore = ShoreStatus(SqliteOutbox(state), dest.rest(dead))
    queue_a_sync(shore)
    result = await shore.flush()
    assert result.offline is not None and "Could not reach" in result.offline and result.sent == 0
    assert SqliteOutbox(state).size() == 4

    # Supabase answers again but is overloaded: still nothing is lost.
    dest.sim.faults.script("rest", "503", times=100)
    dest.restart()
    result = await ShoreStatus(SqliteOutbox(state), dest.rest()).flush()
    assert result.offline is not None and SqliteOutbox(state).size() == 4
    assert dest.sim.supabase.rows(CONNECTIONS) == []

    dest.sim.faults.clear()
    dest.restart()  # the app was closed and opened again: new objects, same state file
    result = await ShoreStatus(SqliteOutbox(state), dest.rest()).flush()
    assert result.complete and result.sent == 4
    assert SqliteOutbox(state).size() == 0
    assert_synced(dest)


async def test_children_queued_before_their_connection_still_arrive(dest: Dest) -> None:
    shore = ShoreStatus(MemoryOutbox(), dest.rest())
    shore.file_state(UPN, drive_id="b!d", item_id="A", status="pending")
    shore.job(UPN, job(JobStatus.RUNNING, 0))
    result = await shore.flush()
    assert result.complete and result.sent == 2
    [connection] = dest.sim.supabase.rows(CONNECTIONS)
    assert dest.sim.supabase.rows(SYNC_STATE)[0]["connection_id"] == connection["id"]
    # A new app run learns the existing connection's id instead of creating another.
    dest.restart()
    again = ShoreStatus(MemoryOutbox(), dest.rest())
    again.file_state(UPN, drive_id="b!d", item_id="B", status="pending")
    await again.flush()
    assert len(dest.sim.supabase.rows(CONNECTIONS)) == 1
    assert {row["connection_id"] for row in dest.sim.supabase.rows(SYNC_STATE)} == {connection["id"]}


async def test_a_row_shore_refuses_for_good_does_not_block_the_rest(dest: Dest) -> None:
    outbox = MemoryOutbox()
    shore = ShoreStatus(outbox, dest.rest())
    shore.connection(UPN)
    shore.file_state(UPN, drive_id="b!d", item_id="A", status="completed")
    bad = dict(outbox.entries[-1].payload, onedrive_item_id="BAD", file_size=-1)  # violates a CHECK
    outbox.enqueue(SYNC_STATE, bad, conflict="connection_id,onedrive_drive_id,onedrive_item_id")
    shore.file_state(UPN, drive_id="b!d", item_id="C", status="completed")
    result = await shore.flush()
    assert result.complete and result.sent == 3 and len(result.dropped) == 1
    assert {row["onedrive_item_id"] for row in dest.sim.supabase.rows(SYNC_STATE)} == {"A", "C"}
    assert outbox.entries == []


async def test_another_yachts_key_stops_the_flush_and_keeps_the_rows(dest: Dest) -> None:
    outbox = MemoryOutbox()
    other = dest.with_target(key=dest.sim.supabase.mint_yacht_key(OTHER_YACHT))
    shore = ShoreStatus(outbox, dest.rest(other))
    queue_a_sync(shore)
    with pytest.raises(ConfigError) as caught:
        await shore.flush()
    assert "another yacht" in caught.value.message
    assert len(outbox.entries) == 4


def test_no_token_reaches_a_status_row(dest: Dest) -> None:
    outbox = MemoryOutbox()
    shore = ShoreStatus(outbox, dest.rest())
    error = "download failed: https://tenant.sharepoint.com/file?tempauth=eyJhbGciOi.eyJzdWIiOi.c2ln"
    shore.file_state(UPN, drive_id="b!d", item_id="A", status="failed", error=error)
    text = str(outbox.entries[0].payload)
    assert "tempauth" not in text and "eyJhbGciOi" not in text
