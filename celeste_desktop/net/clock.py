"""Clocks: the real one, and a virtual one that lets tests wait hours in microseconds.

Everything that waits (retry backoff, throttling pauses, bandwidth shaping, schedules) takes a
`Clock` so tests never sleep for real.

`FakeClock` keeps virtual time. `await clock.sleep(s)` parks the caller until virtual time
reaches its deadline; virtual time moves only

- by `clock.advance(seconds)`, called by a test, or
- with ``auto_advance=True`` (the default), by a helper task that runs while someone sleeps
  and, once the event loop has nothing else to run, jumps virtual time to the earliest
  deadline and wakes the sleepers due then (in deadline order; equal deadlines in the order
  they went to sleep).

"Nothing else to run" is judged from the loop's ready queue (CPython's ``loop._ready``): the
helper yields until that queue is empty for a few rounds in a row, so callbacks, finished I/O
polls and task steps run before time jumps. On loops without that attribute it falls back to
yielding a fixed number of rounds. Work done in threads or awaiting real sockets does not hold
virtual time back: the clock is a test double for waits, not a simulator of the network.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """What code that waits needs from time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences mean anything."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this many seconds (zero or less: just yield to the event loop)."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def now(self) -> datetime:
        return datetime.now(UTC)


_DEFAULT_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

# Idle rounds the auto-advancer waits for before moving time: two lets a loopback write be
# picked up by the next selector poll; without a readable ready queue, more rounds are needed.
_SETTLE_ROUNDS_WITH_READY_QUEUE = 2
_SETTLE_ROUNDS_BLIND = 50


class FakeClock:
    """Virtual time for tests; see the module docstring for how and when time moves."""

    def __init__(
        self,
        *,
        start: datetime = _DEFAULT_EPOCH,
        monotonic_start: float = 1000.0,
        auto_advance: bool = True,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start time")
        self._start_wall = start.astimezone(UTC)
        self._start_monotonic = monotonic_start
        self._now = monotonic_start
        self.auto_advance = auto_advance
        self._sequence = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._advancer: asyncio.Task[None] | None = None

    # -- Clock ---------------------------------------------------------------------------------

    def monotonic(self) -> float:
        return self._now

    def now(self) -> datetime:
        return self._start_wall + timedelta(seconds=self._now - self._start_monotonic)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._sequence), future))
        if self.auto_advance:
            self._ensure_advancer(loop)
        await future

    # -- test controls -------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was made."""
        return self._now - self._start_monotonic

    @property
    def sleeping(self) -> int:
        """How many callers are parked in `sleep` right now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def advance(self, seconds: float) -> None:
        """Move virtual time forward and wake every sleeper whose deadline has come.

        Woken sleepers run at the caller's next ``await``.
        """
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._advance_to(self._now + seconds)

    # -- internals -----------------------------------------------------------------------------

    def _advance_to(self, deadline: float) -> None:
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():  # a cancelled sleeper leaves a cancelled future behind
                future.set_result(None)

    def _ensure_advancer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._advancer is None or self._advancer.done() or self._advancer.get_loop() is not loop:
            self._advancer = loop.create_task(self._auto_advance(), name="FakeClock.auto_advance")

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    async def _auto_advance(self) -> None:
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # CPython's deque of runnable callbacks
        settle = _SETTLE_ROUNDS_WITH_READY_QUEUE if ready is not None else _SETTLE_ROUNDS_BLIND
        idle_rounds = 0
        while True:
            self._drop_cancelled()
            if not self._sleepers or not self.auto_advance:
                return
            await asyncio.sleep(0)
            if ready is not None and len(ready) > 0:
                idle_rounds = 0
                continue
            idle_rounds += 1
            if idle_rounds < settle:
                continue
            idle_rounds = 0
            self._drop_cancelled()
            if self._sleepers:
                self._advance_to(self._sleepers[0][0])
