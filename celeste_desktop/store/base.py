"""What every repository shares: the engine, the clock, short transactions and ``batch()``.

Each public store method is one short transaction of its own, so it is atomic and a kill can
only ever land between two of them. ``batch()`` widens that to several calls when they must
commit together (a file marked delivered *and* its outbox row *and* its manifest line).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from celeste_desktop.store.sqlite import read_connection, write_connection

__all__ = ["StoreBase"]


@dataclass(slots=True)
class _Batch:
    conn: Connection
    thread_id: int
    # A task created inside a batch copies the context, batch included, and may run after the
    # batch ended: it must then not use the closed connection.
    open: bool = True


class StoreBase:
    """Holds the engine; repositories mix in on top of it."""

    def __init__(self, engine: Engine, now: Callable[[], datetime]) -> None:
        self._engine = engine
        self._now = now
        # Identifies this opening of the state (see jobs: who owns a running job).
        self.session_id = uuid.uuid4().hex
        # A ContextVar rather than a thread-local: two asyncio tasks on the loop thread must
        # not end up inside each other's batch.
        self._batch: ContextVar[_Batch | None] = ContextVar(f"celeste_state_batch_{self.session_id}", default=None)
        # Writers of this process queue here rather than in SQLite's busy handler, which polls
        # with growing sleeps and so can starve a small write behind a bulk upsert's back-to-back
        # chunks; a thread blocked on this lock gets it the moment a chunk commits. (Other
        # processes still meet at SQLite's lock, with busy_timeout.)
        self._write_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        return self._engine

    def _joined(self) -> Connection | None:
        batch = self._batch.get()
        if batch is None or not batch.open:
            return None
        if batch.thread_id != threading.get_ident():
            # A context copied into a worker thread (asyncio.to_thread inside a batch): the
            # connection belongs to the other thread and holds the write lock.
            raise RuntimeError("a state batch cannot span threads; finish it before handing work to a thread")
        return batch.conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        with self._write_lock, write_connection(self._engine) as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        with read_connection(self._engine) as conn:
            yield conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make every store call inside the block one transaction (nested blocks join it).

        Keep it short and never ``await`` inside: it holds the database's write lock, which
        every other writer (another thread, the CLI) waits for.
        """
        if self._joined() is not None:
            yield
            return
        with self._write_lock, write_connection(self._engine) as conn:
            batch = _Batch(conn, threading.get_ident())
            token = self._batch.set(batch)
            try:
                yield
            finally:
                batch.open = False
                self._batch.reset(token)
