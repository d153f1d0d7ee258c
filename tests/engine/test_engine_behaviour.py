"""The engine's own behaviours against the simulators: urgent first, pause/resume, cancel, dry run,
a file changing mid-transfer, and permanent failures parked as dead letters."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

from celeste_desktop.cli.main import run
from celeste_desktop.compose import Services
from celeste_desktop.domain.models import FileProblemKind, JobStatus
from celeste_desktop.engine.events import Event, FileDone, FileStarted, JobFinished, Paused, PauseReason, Resumed
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.store.records import FileState


def cli(home: Path, *argv: str) -> int:
    return run(["--home", str(home), *argv], stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())


async def until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not come true in time")


async def acli(home: Path, *argv: str) -> int:
    return await asyncio.to_thread(cli, home, *argv)


async def test_urgent_folder_files_all_finish_before_any_other_starts(ready_home: Path, services: Services) -> None:
    assert await acli(ready_home, "select", "01_BRIDGE", "04_MANUALS") == 0
    assert await acli(ready_home, "select", "--urgent", "13_CERTIFICATIONS") == 0
    events: list[Event] = []
    job = await services.engine(events.append).run()
    assert job.status is JobStatus.COMPLETED
    order = [(type(e).__name__, e.path) for e in events if isinstance(e, FileStarted | FileDone)]
    urgent = [i for i, (_, path) in enumerate(order) if path.startswith("13_CERTIFICATIONS/")]
    others = [i for i, (kind, path) in enumerate(order) if kind == "FileStarted" and not path.startswith("13_")]
    assert urgent and others
    assert max(urgent) < min(others), "an ordinary file started before every urgent file had finished"


async def test_pause_stops_transfers_and_resume_finishes_them(
    ready_home: Path, services: Services, sim: SimStack
) -> None:
    sim.graph.add_file("/04_MANUALS", "Big Manual.pdf", 12 * 1024 * 1024)
    assert await acli(ready_home, "select", "04_MANUALS") == 0
    from celeste_desktop.sim.faults import LinkShaper

    sim.faults.link = LinkShaper(rate_bytes_per_s=8_000_000)  # slow enough to pause mid-file
    events: list[Event] = []
    engine = services.engine(events.append)
    task = asyncio.create_task(engine.run())
    await until(lambda: any(isinstance(e, FileStarted) and e.path.endswith("Big Manual.pdf") for e in events))
    await asyncio.sleep(0.3)
    engine.pause()
    await asyncio.sleep(0.2)
    served = sim.servers["download"].stats.bytes_out + sim.servers["supabase"].stats.bytes_in
    await asyncio.sleep(1.0)
    assert sim.servers["download"].stats.bytes_out + sim.servers["supabase"].stats.bytes_in - served < 300_000, (
        "bytes kept flowing while paused"
    )
    assert any(isinstance(e, Paused) and e.reason is PauseReason.USER for e in events)
    sim.faults.link = None
    engine.resume()
    job = await asyncio.wait_for(task, 120)
    assert job.status is JobStatus.COMPLETED
    assert any(isinstance(e, Resumed) for e in events)
    rows = {row["original_path"]: row for row in sim.supabase.rows("doc_metadata")}
    big = rows["04_MANUALS/Big Manual.pdf"]
    stored = sim.supabase.read_object("documents", big["storage_path"])
    assert hashlib.sha256(stored).hexdigest() == big["sha256"] and len(stored) == 12 * 1024 * 1024


async def test_cancel_ends_the_job_and_the_next_sync_finishes(
    ready_home: Path, services: Services, sim: SimStack
) -> None:
    assert await acli(ready_home, "select", "04_MANUALS") == 0
    from celeste_desktop.sim.faults import LinkShaper

    sim.faults.link = LinkShaper(rate_bytes_per_s=200_000)
    events: list[Event] = []
    engine = services.engine(events.append)
    task = asyncio.create_task(engine.run())
    await until(lambda: any(isinstance(e, FileDone) for e in events))
    engine.cancel()
    job = await asyncio.wait_for(task, 30)
    assert job.status is JobStatus.CANCELLED
    assert any(isinstance(e, JobFinished) and e.status is JobStatus.CANCELLED for e in events)
    sim.faults.link = None
    finished = await services.engine(lambda event: None).run()
    assert finished.status is JobStatus.COMPLETED
    assert len(sim.supabase.rows("doc_metadata")) == len(
        [p for p in (row["original_path"] for row in sim.supabase.rows("doc_metadata")) if p.startswith("04_MANUALS/")]
    )


async def test_dry_run_sends_nothing(ready_home: Path, services: Services, sim: SimStack) -> None:
    assert await acli(ready_home, "select", "01_BRIDGE") == 0
    sim.reset_stats()
    job = await services.engine(lambda event: None).run(dry_run=True)
    assert job.dry_run and job.status is JobStatus.COMPLETED
    assert sim.servers["download"].stats.requests == 0
    assert sim.supabase.list_objects("documents") == []
    assert job.counters.files_found > 10


async def test_too_large_for_the_bucket_is_parked_not_retried_forever(
    ready_home: Path, services: Services, sim: SimStack
) -> None:
    from dataclasses import replace

    buckets = sim.supabase.objects.buckets
    buckets["documents"] = replace(buckets["documents"], file_size_limit=1_000_000)
    sim.graph.add_file("/01_BRIDGE", "Huge Chart Pack.pdf", 2_000_000)
    assert await acli(ready_home, "select", "01_BRIDGE") == 0
    job = await services.engine(lambda event: None).run()
    assert job.status is JobStatus.PARTIAL and job.counters.files_failed == 1
    dead = [p for p in services.state.problems() if p.kind is FileProblemKind.DEAD_LETTER]
    assert [p.path for p in dead] == ["01_BRIDGE/Huge Chart Pack.pdf"]
    assert "bucket" in dead[0].message and "MB" in dead[0].message
    sim.reset_stats()
    again = await services.engine(lambda event: None).run()
    assert again.counters.files_failed == 0, "a dead letter waits for a reset instead of failing every sync"
    assert sim.servers["download"].stats.requests == 0
    item = sim.graph.find("/01_BRIDGE/Huge Chart Pack.pdf")
    assert services.state.file_state(dead[0].drive_id, item.id) is FileState.DEAD
