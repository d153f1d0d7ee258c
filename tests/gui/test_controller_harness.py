"""Shared helpers of the controller tests (no tests here): a controller on a qasync loop against
the simulators, ways to wait for it, and a clock whose waits are short.

Test modules import from this file the way test_folder_view imports from test_folder_model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import qasync
from PySide6.QtWidgets import QApplication

from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import load_settings, save_settings
from celeste_desktop.gui.controller import Controller, Hooks
from celeste_desktop.gui.launch import vault_factory
from celeste_desktop.net.clock import SystemClock
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.support.logs import Redactor

T = TypeVar("T")
BUCKET = "documents"


class QuickClock(SystemClock):
    """Real time, but every wait (backoff, offline re-checks) is a hundredth as long."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / 100)


class Harness:
    def __init__(self, loop: qasync.QEventLoop, controller: Controller, sim: SimStack, home: Path) -> None:
        self.loop = loop
        self.controller = controller
        self.window = controller.window
        self.sim = sim
        self.home = home

    def run(self, awaitable: Awaitable[T], seconds: float = 30.0) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(awaitable, seconds)

        return self.loop.run_until_complete(bounded())

    def wait(self, condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
        async def poll() -> None:
            deadline = time.monotonic() + seconds
            while not condition():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out after {seconds} s waiting for {what}")
                await asyncio.sleep(0.02)

        self.loop.run_until_complete(poll())

    def pump(self, seconds: float) -> None:
        """Let the GUI loop run (timers, events) for a while."""
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def start_signed_in(self) -> None:
        self.run(self.controller.start())
        self.window.connect_button.click()
        self.wait(lambda: self.controller.account is not None, "the device-code sign-in")
        self.wait(lambda: self.window.picker.model.drive_id is not None, "the drive list")
        self.run(self.window.picker.settled())

    def tick(self, *names: str) -> None:
        model = self.window.picker.model
        found = set()
        for row in range(model.rowCount()):
            index = model.index(row, 0)
            item = model.item(index)
            if item is not None and item.name in names:
                assert model.set_checked(index, True)
                found.add(item.name)
        assert found == set(names), f"folders not in the tree: {set(names) - found}"
        self.run(self.controller.settled())

    def objects(self) -> int:
        return len(self.sim.supabase.list_objects(BUCKET))

    def rows(self) -> dict[str, dict[str, object]]:
        return {str(row["original_path"]): row for row in self.sim.supabase.rows("doc_metadata")}

    def finish_sync(self, seconds: float = 60.0) -> None:
        self.wait(lambda: not self.controller.sync.running, "the sync to finish", seconds)
        self.run(self.controller.settled())


def tenant_files(sim: SimStack, *tops: str) -> set[str]:
    """Paths of the plain files under ``tops`` (what a sync of those folders must store)."""
    tenant = sim.graph.tenant
    found: set[str] = set()
    with tenant.lock:
        drive = tenant.drives[sim.graph.personal_drive_id]
        for item in tenant.walk(drive.root_id):
            if item.kind != "file" or item.malware or item.deleted:
                continue
            parts, current, packaged = [], item, False
            while current.parent_id is not None:
                parts.append(current.name)
                parent = tenant.items[current.parent_id]
                packaged = packaged or parent.kind not in ("folder", "root")
                current = parent
            path = "/".join(reversed(parts))
            if not packaged and path.startswith(tuple(f"{top}/" for top in tops)):
                found.add(path)
    return found


def configure(home: Path, **changes: object) -> None:
    paths = AppPaths.resolve(home)
    save_settings(paths.settings_file, load_settings(paths.settings_file).replace(**changes))


_RETIRED_LOOPS: list[qasync.QEventLoop] = []


def close_qasync_loop(loop: qasync.QEventLoop) -> None:
    """Close a test's qasync loop and keep it referenced for the rest of the session.

    qasync's ``close()`` leaves the Qt timers of cancelled ``call_later`` handles registered
    until they fire. If the loop were then collected by a garbage collection that happens to
    run in another thread (the simulators', the engine's), its timer object would be deleted
    there, Qt could not unregister those timers from that thread, and a later test would
    crash in ``QTimerInfoList::activateTimers`` on the freed object. Kept alive, the timers fire
    on the main thread, see the loop stopped and remove themselves. (The app has one loop for
    its whole life, so it never meets this.)
    """
    loop.close()
    asyncio.set_event_loop(None)
    _RETIRED_LOOPS.append(loop)


@contextmanager
def controller_harness(
    app: QApplication, sim: SimStack, home: Path, *, hooks: Hooks | None = None, quick_clock: bool = False
) -> Iterator[Harness]:
    """A started-but-not-signed-in controller for ``home`` (settings from ``sim_home``)."""
    # The OS trust store is slow to load per connection and the sim's CA comes from ca_bundle.
    configure(home, use_system_trust=False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    paths = AppPaths.resolve(home)
    redactor = Redactor()
    controller = Controller(
        paths, vault_factory(paths, redactor), hooks=hooks or Hooks(), demo=True,
        clock=QuickClock() if quick_clock else None, on_secret=redactor.add_secret, loop=loop,
    )  # fmt: skip
    controller.window.show()
    harness = Harness(loop, controller, sim, home)
    try:
        yield harness
    finally:
        try:
            harness.run(controller.shutdown(), 30)
        finally:
            controller.window.close()
            controller.window.deleteLater()
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            close_qasync_loop(loop)
