"""Progress events: Qt-free dataclasses every consumer (GUI, CLI, tests) reads.

The engine emits freely; ``Coalescer`` makes sure consumers see at most about ten progress
updates a second (the latest per file, and one smoothed throughput figure), while events that
change what a person sees — a file done or failed, a pause, the end of a job — pass at once and
in order. ``ThroughputMeter`` smooths bytes/s and the ETA so numbers don't jump.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from celeste_desktop.domain.models import ActionKind, JobCounters, JobStatus


class PauseReason(enum.StrEnum):
    USER = "user"  # the officer pressed Pause
    THROTTLED = "throttled"  # Microsoft or Supabase asked us to wait (Retry-After)
    SCHEDULE = "schedule"  # outside the allowed schedule windows
    BUDGET = "budget"  # the data budget for the period is used up
    OFFLINE = "offline"  # no connection: re-checked with backoff
    SIGN_IN = "sign_in"  # the refresh token died: waiting for "Sign in again"
    METERED = "metered"  # on a metered network, unless "Sync anyway"
    DESTINATION = "destination"  # Supabase unreachable or refusing


@dataclass(frozen=True, slots=True)
class JobPlanned:
    job_id: str
    files: int
    bytes: int
    dry_run: bool = False
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class EnumerationProgress:
    drive_name: str
    items_seen: int


@dataclass(frozen=True, slots=True)
class FileStarted:
    job_id: str
    item_id: str
    path: str
    size: int
    kind: ActionKind


@dataclass(frozen=True, slots=True)
class FileProgress:
    job_id: str
    item_id: str
    path: str
    phase: str  # "download" or "upload"
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class FileDone:
    job_id: str
    item_id: str
    path: str
    kind: ActionKind
    bytes_moved: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class FileFailed:
    job_id: str
    item_id: str
    path: str
    message: str
    will_retry: bool
    dead_letter: bool = False


@dataclass(frozen=True, slots=True)
class FileSkipped:
    job_id: str
    item_id: str
    path: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Throughput:
    job_id: str
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    bytes_per_second: float
    eta_seconds: float | None


@dataclass(frozen=True, slots=True)
class Paused:
    reason: PauseReason
    message: str
    resume_in_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Resumed:
    reason: PauseReason


@dataclass(frozen=True, slots=True)
class JobFinished:
    job_id: str
    status: JobStatus
    counters: JobCounters
    summary: str
    error: str | None = None


Event = (
    JobPlanned
    | EnumerationProgress
    | FileStarted
    | FileProgress
    | FileDone
    | FileFailed
    | FileSkipped
    | Throughput
    | Paused
    | Resumed
    | JobFinished
)
EventSink = Callable[[Event], None]


class ThroughputMeter:
    """Exponentially smoothed bytes/s over a time constant, and an ETA from it."""

    def __init__(self, time_constant: float = 5.0) -> None:
        self.time_constant = time_constant
        self.rate = 0.0
        self._last_time: float | None = None
        self._pending = 0

    def add(self, nbytes: int, now: float) -> None:
        self._pending += nbytes
        if self._last_time is None:
            self._last_time = now
            return
        elapsed = now - self._last_time
        if elapsed < 0.2:  # accumulate: a rate from tiny intervals is noise
            return
        instant = self._pending / elapsed
        weight = 1.0 - math.exp(-elapsed / self.time_constant)
        self.rate = instant if self.rate == 0.0 else self.rate + weight * (instant - self.rate)
        self._pending = 0
        self._last_time = now

    def eta(self, remaining: int) -> float | None:
        if remaining <= 0:
            return 0.0
        if self.rate <= 1.0:
            return None
        return remaining / self.rate


@dataclass
class Coalescer:
    """Forwards events to ``sink``, merging progress so consumers see ~``1/interval`` updates/s.

    Thread-safe: the engine may emit from its own thread. ``flush(now)`` is called by the
    consumer's timer (the GUI's 100 ms timer, the CLI's refresh loop) and by ``emit`` when the
    interval has passed.
    """

    sink: EventSink
    interval: float = 0.1
    _pending_progress: dict[str, FileProgress] = field(default_factory=dict)
    _pending_throughput: Throughput | None = None
    _last_flush: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, event: Event, now: float) -> None:
        with self._lock:
            if isinstance(event, FileProgress):
                self._pending_progress[event.item_id] = event
            elif isinstance(event, Throughput):
                self._pending_throughput = event
            else:
                if isinstance(event, FileDone | FileFailed):
                    self._pending_progress.pop(event.item_id, None)
                self._flush_locked(now, force=True)
                self.sink(event)
                return
            self._flush_locked(now, force=False)

    def flush(self, now: float, *, force: bool = False) -> None:
        with self._lock:
            self._flush_locked(now, force=force)

    def _flush_locked(self, now: float, *, force: bool) -> None:
        if not force and now - self._last_flush < self.interval:
            return
        if not self._pending_progress and self._pending_throughput is None:
            return
        self._last_flush = now
        progress = list(self._pending_progress.values())
        self._pending_progress.clear()
        throughput, self._pending_throughput = self._pending_throughput, None
        for event in progress:
            self.sink(event)
        if throughput is not None:
            self.sink(throughput)
