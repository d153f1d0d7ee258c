"""The engine's own thread: an asyncio loop apart from the GUI's, commands in, events out.

The engine is pure asyncio and knows nothing of Qt. Hashing, SQLite and TLS run on this thread
(and on its loop's worker threads), so they never hold up the window. The GUI talks to it in
two directions only:

- commands go in with :meth:`EngineHost.submit` (a coroutine on the engine loop, answered by a
  ``concurrent.futures.Future``), :meth:`EngineHost.run` (the same, awaited on the GUI's qasync
  loop through ``asyncio.wrap_future``; cancelling the awaiting task cancels the engine-side
  task), :meth:`EngineHost.blocking` (a blocking call such as a state query, in a worker thread
  of the engine loop) and :meth:`EngineHost.call_soon` (fire and forget, e.g. ``engine.pause``);
- events come out through :meth:`EngineHost.post` (thread-safe): progress is merged by
  ``engine.events.Coalescer`` and everything lands in a queue that a 100 ms ``QTimer`` on the
  GUI thread drains into the :attr:`EngineHost.events` signal, one batch per tick.

:class:`HostFolderSource` is the folder tree's ``FolderSource``: its Graph listings run on the
engine loop and come back to the GUI loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from celeste_desktop.auth.vault import Vault
from celeste_desktop.compose import Services, open_services
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings
from celeste_desktop.domain.errors import CelesteError
from celeste_desktop.domain.models import Drive, RemoteItem
from celeste_desktop.engine.events import Coalescer, Event
from celeste_desktop.net.clock import Clock
from celeste_desktop.net.policy import PolicyEvent

log = logging.getLogger(__name__)

T = TypeVar("T")
HostEvent = Event | PolicyEvent
DRAIN_INTERVAL_MS = 100


class NotConnected(CelesteError):
    """A command that needs the services was given before they were opened."""

    default_title = "Not connected yet"


class EngineHost(QObject):
    """Owns the engine thread, its event loop and the services opened on it."""

    events = Signal(list)  # list[Event | PolicyEvent], in the order they happened

    def __init__(self, *, interval_ms: int = DRAIN_INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queue: collections.deque[HostEvent] = collections.deque()
        self._coalescer = Coalescer(self._queue.append, interval=interval_ms / 1000)
        self.services: Services | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.drain)

    # -- the thread --------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._loop is not None and self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the engine thread is not running; call start() first")
        return self._loop

    @property
    def engine_thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        if self.started:
            return
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                _close_loop(loop)

        self._thread = threading.Thread(target=main, name="celeste-engine", daemon=True)
        self._thread.start()
        ready.wait()
        self._timer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the services, stop the loop and join the thread (idempotent)."""
        self._timer.stop()
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self.services is not None and thread.is_alive():
            with contextlib.suppress(Exception):
                self.submit(self._close_services).result(timeout)
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        self._loop = self._thread = None
        self.drain()

    # -- commands ---------------------------------------------------------------------------------

    def submit(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> concurrent.futures.Future[T]:
        """Run ``factory()`` on the engine loop; the coroutine is created there, not here."""

        async def call() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(call(), self.loop)

    async def run(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Await ``factory()`` run on the engine loop; cancelling the caller cancels it there."""
        return await asyncio.wrap_future(self.submit(factory))

    async def blocking(self, function: Callable[..., T], *args: Any) -> T:
        """A blocking call (state query, MSAL) in a worker thread of the engine loop."""
        bound = functools.partial(function, *args)
        return await self.run(lambda: asyncio.to_thread(bound))

    def call_soon(self, function: Callable[..., object], *args: Any) -> None:
        """Call ``function(*args)`` on the engine thread (for the engine's own methods)."""
        self.loop.call_soon_threadsafe(function, *args)

    # -- services -----------------------------------------------------------------------------------

    def require_services(self) -> Services:
        if self.services is None:
            raise NotConnected("The app is not connected yet: finish the set-up and press Connect first.")
        return self.services

    async def open_services(
        self,
        paths: AppPaths,
        settings: Settings,
        vault: Vault,
        *,
        clock: Clock | None = None,
        on_secret: Callable[[str], None] | None = None,
    ) -> Services:
        """Build the clients on the engine thread (they belong to its loop); replaces any open."""
        await self.close_services()

        async def build() -> Services:
            # open_services is synchronous but opens the SQLite state: keep it off both loops.
            return await asyncio.to_thread(
                functools.partial(
                    open_services, paths, settings, vault, clock=clock, on_policy_event=self.post_policy,
                    on_secret=on_secret,
                )
            )  # fmt: skip

        self.services = await self.run(build)
        return self.services

    async def close_services(self) -> None:
        if self.services is not None and self.started:
            await self.run(self._close_services)

    async def _close_services(self) -> None:
        services, self.services = self.services, None
        if services is not None:
            await services.aclose()

    # -- events ---------------------------------------------------------------------------------------

    def post(self, event: Event) -> None:
        """The engine's event sink; safe from any thread."""
        self._coalescer.emit(event, time.monotonic())

    def post_policy(self, event: PolicyEvent) -> None:
        """Retry-policy news (throttled, backing off, recovered); safe from any thread."""
        self._queue.append(event)

    def drain(self) -> list[HostEvent]:
        """Flush pending progress and hand everything queued to the GUI as one batch."""
        self._coalescer.flush(time.monotonic())
        batch: list[HostEvent] = []
        while self._queue:
            batch.append(self._queue.popleft())
        if batch:
            self.events.emit(batch)
        return batch


class HostFolderSource:
    """The folder tree's source: Graph listings on the engine thread, answers on the GUI loop."""

    def __init__(self, host: EngineHost) -> None:
        self._host = host
        self.problems: tuple[CelesteError, ...] = ()  # parts of the drive list that were refused

    async def list_children(self, drive_id: str, item_id: str) -> list[RemoteItem]:
        graph = self._host.require_services().graph

        async def collect() -> list[RemoteItem]:
            found: list[RemoteItem] = []
            async for page in graph.iter_children(drive_id, item_id):
                found.extend(page)
            return found

        return await self._host.run(collect)

    async def list_drives(self) -> list[Drive]:
        services = self._host.require_services()
        include = services.settings.include_sharepoint
        listing = await self._host.run(lambda: services.graph.list_drives(include_sharepoint=include))
        self.problems = tuple(listing.problems)
        return list(listing.drives)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on the engine loop, then close it."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    except Exception:  # closing must not raise into a thread nobody joins any more
        log.exception("engine loop did not close cleanly")
    finally:
        loop.close()
