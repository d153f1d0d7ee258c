"""The engine thread: commands run there and answer on the GUI loop, cancellation crosses over,
events come back coalesced in one batch per tick, and the folder source lists on the engine
thread against the simulated Graph."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from test_controller_harness import close_qasync_loop

from celeste_desktop.cli.context import CliContext
from celeste_desktop.cli.main import run as cli
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import load_settings
from celeste_desktop.domain.models import ActionKind
from celeste_desktop.engine.events import FileDone, FileProgress, FileStarted
from celeste_desktop.gui.engine_host import EngineHost, HostEvent, HostFolderSource, NotConnected
from celeste_desktop.sim.stack import SimStack


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    event_loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(event_loop)
    try:
        yield event_loop
    finally:
        close_qasync_loop(event_loop)


@pytest.fixture
def host(loop: qasync.QEventLoop) -> Iterator[EngineHost]:
    engine_host = EngineHost()
    engine_host.start()
    yield engine_host
    engine_host.stop()


def test_commands_run_on_the_engine_thread_and_answer_on_the_gui_loop(
    host: EngineHost, loop: qasync.QEventLoop
) -> None:
    async def where() -> tuple[int, bool]:
        return threading.get_ident(), asyncio.get_running_loop() is host.loop

    async def scenario() -> tuple[tuple[int, bool], int, int]:
        on_engine = await host.run(where)
        in_worker = await host.blocking(threading.get_ident)
        return on_engine, in_worker, threading.get_ident()

    (engine_thread, on_engine_loop), worker_thread, gui_thread = loop.run_until_complete(scenario())
    assert host.engine_thread is not None and engine_thread == host.engine_thread.ident
    assert on_engine_loop
    assert len({engine_thread, worker_thread, gui_thread}) == 3, "blocking calls leave both loops free"


def test_cancelling_the_waiting_gui_task_cancels_the_engine_side_task(
    host: EngineHost, loop: qasync.QEventLoop
) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def listing() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def scenario() -> None:
        task = asyncio.ensure_future(host.run(listing))
        assert await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if cancelled.is_set():
                return
            await asyncio.sleep(0.01)

    loop.run_until_complete(scenario())
    assert cancelled.is_set(), "the superseded work stopped on the engine thread too"


def test_events_come_out_coalesced_one_batch_per_tick(host: EngineHost, loop: qasync.QEventLoop) -> None:
    batches: list[list[HostEvent]] = []
    host.events.connect(batches.append)

    def engine_side() -> None:
        host.post(FileStarted("job", "item-1", "a.pdf", 10_000, ActionKind.UPLOAD))
        for done in range(1, 10_001, 10):
            host.post(FileProgress("job", "item-1", "a.pdf", "download", done, 10_000))
        host.post(FileDone("job", "item-1", "a.pdf", ActionKind.UPLOAD, 10_000))

    started = time.monotonic()
    worker = threading.Thread(target=engine_side)
    worker.start()
    worker.join()
    loop.run_until_complete(asyncio.sleep(0.35))
    elapsed = time.monotonic() - started
    events = [event for batch in batches for event in batch]
    progress = [event for event in events if isinstance(event, FileProgress)]
    assert isinstance(events[0], FileStarted) and isinstance(events[-1], FileDone), "order is kept"
    assert len(progress) <= elapsed / 0.1 + 2, f"{len(progress)} progress updates in {elapsed:.2f} s"
    assert 1 <= len(batches) <= elapsed / 0.1 + 1
    assert not any(isinstance(event, FileProgress) for event in events[events.index(events[-1]) :])


def test_folder_source_needs_the_services_first(host: EngineHost, loop: qasync.QEventLoop) -> None:
    source = HostFolderSource(host)
    with pytest.raises(NotConnected, match="Connect"):
        loop.run_until_complete(source.list_drives())


def test_folder_source_lists_on_the_engine_thread_and_stops_when_superseded(
    host: EngineHost, loop: qasync.QEventLoop, sim: SimStack, sim_home: Path
) -> None:
    code = cli(["--home", str(sim_home), "login", "--device-code"], stdin=io.StringIO(), stdout=io.StringIO(),
               stderr=io.StringIO())  # fmt: skip
    assert code == 0
    paths = AppPaths.resolve(sim_home)
    settings = load_settings(paths.settings_file)
    loop.run_until_complete(host.open_services(paths, settings, CliContext(paths=paths).secrets()))
    source = HostFolderSource(host)

    drives = loop.run_until_complete(source.list_drives())
    assert drives[0].drive_id == sim.graph.personal_drive_id
    children = loop.run_until_complete(source.list_children(drives[0].drive_id, "root"))
    assert {"01_BRIDGE", "04_MANUALS"} <= {item.name for item in children}

    sim.faults.script("graph", "delay", seconds=5.0)  # the next listing hangs on the link

    async def superseded() -> float:
        task = asyncio.ensure_future(source.list_children(drives[0].drive_id, sim.graph.find("/01_BRIDGE").id))
        await asyncio.sleep(0.3)
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - began

    assert loop.run_until_complete(superseded()) < 1.0

    async def engine_tasks() -> int:
        await asyncio.sleep(0.05)
        return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    assert loop.run_until_complete(host.run(engine_tasks)) == 0, "the listing was cancelled on the engine loop"
    host.stop()
    assert host.services is None and not host.started
