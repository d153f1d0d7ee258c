"""A large file's upload trails its download (one pass instead of two), and never completes in
storage with bytes the download did not verify. Against the simulators, over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

import pytest

from celeste_desktop.cli.main import run
from celeste_desktop.compose import Services
from celeste_desktop.domain.models import JobStatus
from celeste_desktop.engine.events import Event, FileProgress
from celeste_desktop.sim.faults import LinkShaper
from celeste_desktop.sim.stack import SimStack

MIB = 1024 * 1024


def cli(home: Path, *argv: str) -> int:
    return run(["--home", str(home), *argv], stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())


def assert_streamed(events: list[Event], path: str, size: int) -> None:
    """The upload began before the download ended, and never ran ahead of the written bytes."""
    progress = [e for e in events if isinstance(e, FileProgress) and e.path == path]
    last_download = max(i for i, e in enumerate(progress) if e.phase == "download")
    first_upload = min(i for i, e in enumerate(progress) if e.phase == "upload" and e.done > 0)
    assert first_upload < last_download, "the upload waited for the whole download"
    written = 0
    for event in progress:
        if event.phase == "download":
            written = max(written, event.done)
        elif event.done < size:
            assert event.done <= written


def stored_matches_source(sim: SimStack, path: str) -> bool:
    rows = {row["original_path"]: row for row in sim.supabase.rows("doc_metadata")}
    row = rows[path]
    stored = sim.supabase.read_object("documents", row["storage_path"])
    item = sim.graph.find(f"/{path}")
    source = sim.graph.synth.read_all(sim.graph.synth.build(item))
    return stored == source and hashlib.sha256(stored).hexdigest() == row["sha256"]


async def select_one_file(sim_home: Path, sim: SimStack, folder: str, name: str, size: int, *, rate: int) -> None:
    """A folder holding one file of ``size`` bytes, ticked, over a link of ``rate`` bytes/s."""
    sim.graph.add_folder("/", folder)
    sim.graph.add_file(f"/{folder}", name, size)
    assert await asyncio.to_thread(cli, sim_home, "select", folder) == 0
    sim.faults.link = LinkShaper(rate_bytes_per_s=rate)


async def test_the_upload_runs_while_the_download_is_still_arriving(
    sim_home: Path, services: Services, sim: SimStack
) -> None:
    # Slow enough that the download lasts several upload chunks (6 MiB each).
    await select_one_file(sim_home, sim, "Big", "Survey.pdf", 40 * MIB, rate=40_000_000)
    events: list[Event] = []
    job = await asyncio.wait_for(services.engine(events.append).run(), 120)
    assert job.status is JobStatus.COMPLETED
    assert_streamed(events, "Big/Survey.pdf", 40 * MIB)
    assert stored_matches_source(sim, "Big/Survey.pdf")


async def test_a_download_that_starts_over_is_uploaded_afresh(
    sim_home: Path, services: Services, sim: SimStack
) -> None:
    await select_one_file(sim_home, sim, "Big", "Chart Pack.pdf", 30 * MIB, rate=60_000_000)
    # The connection breaks at 20 MiB and the host then ignores Range: the spool starts over.
    sim.faults.script("download", "reset", reset_after=20 * MIB)
    sim.graph.ignore_range = True
    sim.servers["supabase"].record_paths = True
    events: list[Event] = []
    job = await asyncio.wait_for(services.engine(events.append).run(), 120)
    assert job.status is JobStatus.COMPLETED, (job, [e for e in events if "Failed" in type(e).__name__])
    creations = [p for p in sim.servers["supabase"].stats.paths if p.startswith("POST /storage/v1/upload/resumable")]
    # What was streamed before the restart was not trusted: a second upload was created.
    assert len(creations) == 2, sim.servers["supabase"].stats.paths
    assert stored_matches_source(sim, "Big/Chart Pack.pdf")


async def test_an_interrupted_stream_resumes_both_sides_where_they_stopped(
    sim_home: Path, services: Services, sim: SimStack
) -> None:
    await select_one_file(sim_home, sim, "Big", "Hull Report.pdf", 30 * MIB, rate=15_000_000)
    engine = services.engine(lambda event: None)
    task = asyncio.create_task(engine.run())

    def progress() -> tuple[int, int]:
        ids = _transfers(services)
        checkpoint = services.state.checkpoint(*ids[0]) if ids else None
        return (checkpoint.download_offset, checkpoint.tus_offset) if checkpoint else (0, 0)

    for _ in range(600):
        if progress()[1] >= 6 * MIB:
            break
        await asyncio.sleep(0.05)
    engine.cancel()
    first = await asyncio.wait_for(task, 30)
    assert first.status is JobStatus.CANCELLED
    downloaded, uploaded = progress()
    # The upload trails the written bytes, so it may be ahead of the last durable checkpoint
    # by less than a checkpoint interval and one chunk.
    assert 6 * MIB <= uploaded <= downloaded + 10 * MIB and downloaded < 30 * MIB
    sim.faults.link = None
    sim.servers["download"].stats.reset()
    sim.servers["supabase"].stats.reset()
    second = await asyncio.wait_for(services.engine(lambda event: None).run(), 120)
    assert second.status is JobStatus.COMPLETED
    # Only the rest crossed again, each way (plus at most a write and a chunk in flight).
    assert sim.servers["download"].stats.bytes_out < 30 * MIB - downloaded + 2 * MIB
    assert sim.servers["supabase"].stats.bytes_in < 30 * MIB - uploaded + 7 * MIB
    assert stored_matches_source(sim, "Big/Hull Report.pdf")


def _transfers(services: Services) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from celeste_desktop.store.schema import transfers

    with services.state.engine.connect() as conn:
        return [(row.drive_id, row.item_id) for row in conn.execute(select(transfers.c.drive_id, transfers.c.item_id))]


async def test_a_small_file_streams_too_and_is_stored_only_once_verified(
    sim_home: Path, services: Services, sim: SimStack
) -> None:
    await select_one_file(sim_home, sim, "Small", "Crew List.pdf", 3 * MIB, rate=3_000_000)  # about a second each way
    events: list[Event] = []
    job = await asyncio.wait_for(services.engine(events.append).run(), 120)
    assert job.status is JobStatus.COMPLETED
    assert_streamed(events, "Small/Crew List.pdf", 3 * MIB)
    assert stored_matches_source(sim, "Small/Crew List.pdf")
    assert _transfers(services) == []  # a small file keeps no checkpoint


async def test_queued_actions_are_started_a_window_at_a_time(
    sim_home: Path, services: Services, sim: SimStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import celeste_desktop.engine.runner as runner_module

    monkeypatch.setattr(runner_module, "QUEUE_WINDOW", 6)
    sim.graph.add_folder("/", "Many")
    sim.graph.add_files("/Many", 120, 2048)
    assert await asyncio.to_thread(cli, sim_home, "select", "Many") == 0
    most = 0
    job_task = asyncio.create_task(services.engine(lambda event: None).run())
    while not job_task.done():
        entries = [t for t in asyncio.all_tasks() if "_run_entry" in repr(t.get_coro())]
        most = max(most, len(entries))
        await asyncio.sleep(0.002)
    job = await job_task
    assert job.status is JobStatus.COMPLETED and job.counters.files_succeeded == 120
    assert 1 < most <= 12  # two lanes, six each at most: not one task per queued file


async def test_a_file_gives_its_transfer_slot_to_the_next_while_it_registers(
    sim_home: Path, services: Services, sim: SimStack
) -> None:
    from celeste_desktop.engine.events import FileDone, FileStarted

    sim.graph.add_folder("/", "Two")
    sim.graph.add_files("/Two", 2, 4096)
    assert await asyncio.to_thread(cli, sim_home, "select", "Two") == 0
    services.settings = services.settings.replace(concurrency_small=1)
    # Registration is slow (a satellite round trip or two): the next file must not wait for it.
    sim.faults.script("rest", "delay", seconds=1.5, times=2, path="doc_metadata")
    events: list[Event] = []
    job = await asyncio.wait_for(services.engine(events.append).run(), 60)
    assert job.status is JobStatus.COMPLETED and job.counters.files_succeeded == 2
    order = [(type(e).__name__, e.path) for e in events if isinstance(e, FileStarted | FileDone)]
    first, second = "Two/file00001.bin", "Two/file00002.bin"
    assert order.index(("FileStarted", second)) < order.index(("FileDone", first)), order
