"""Schedule windows ("only 22:00–06:00 local time"): is syncing allowed now, and until when.

Windows are local wall-clock times and may cross midnight. An empty list means always. The
answer includes the next moment the state changes, so the engine can sleep exactly that long
instead of polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta


@dataclass(frozen=True, slots=True)
class Window:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Window:
        start_text, end_text = text.strip().split("-")
        return cls(time.fromisoformat(start_text), time.fromisoformat(end_text))

    def contains(self, moment: time) -> bool:
        if self.start == self.end:
            return True  # 00:00-00:00: the whole day
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # crosses midnight

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class ScheduleState:
    allowed: bool
    next_change: datetime | None  # None: never changes (no windows)

    def seconds_until_change(self, now: datetime) -> float | None:
        return None if self.next_change is None else max(0.0, (self.next_change - now).total_seconds())


def parse_windows(texts: Sequence[str]) -> tuple[Window, ...]:
    return tuple(Window.parse(text) for text in texts)


def schedule_state(now: datetime, windows: Sequence[Window]) -> ScheduleState:
    """Whether syncing is allowed at ``now`` (local, aware or naive) and when that changes."""
    if not windows:
        return ScheduleState(True, None)
    allowed = any(window.contains(now.time()) for window in windows)
    # The state can only change at a window boundary: look at the boundaries of the next two days.
    boundaries: list[datetime] = []
    for day in range(3):
        date = (now + timedelta(days=day)).date()
        for window in windows:
            for moment in (window.start, window.end):
                candidate = datetime.combine(date, moment, tzinfo=now.tzinfo)
                if candidate > now:
                    boundaries.append(candidate)
    for boundary in sorted(boundaries):
        if any(window.contains(boundary.time()) for window in windows) != allowed:
            return ScheduleState(allowed, boundary)
    return ScheduleState(allowed, None)


def describe(windows: Sequence[Window]) -> str:
    return ", ".join(str(window) for window in windows) if windows else "any time"
