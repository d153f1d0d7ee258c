"""The gate every transfer passes: paused for a reason (user, schedule, budget, offline…) or open.

Several reasons can hold the gate at once (the officer paused, and the link is down); it opens
when the last one is lifted. Holding the gate also interrupts transfers in flight: they stop at
once and resume later from their checkpoints, which is what "pause at any instant" means over a
link where a chunk can take minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from celeste_desktop.engine.events import Event, Paused, PauseReason, Resumed


class Gate:
    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit
        self._reasons: dict[PauseReason, str] = {}
        self._open = asyncio.Event()
        self._open.set()
        self._interrupt_listeners: list[Callable[[PauseReason], None]] = []

    @property
    def is_open(self) -> bool:
        return not self._reasons

    @property
    def reasons(self) -> dict[PauseReason, str]:
        return dict(self._reasons)

    def on_interrupt(self, listener: Callable[[PauseReason], None]) -> Callable[[], None]:
        """Called when the gate closes (first reason added); returns an unsubscribe function."""
        self._interrupt_listeners.append(listener)
        return lambda: self._interrupt_listeners.remove(listener)

    def close(self, reason: PauseReason, message: str, resume_in_seconds: float | None = None) -> None:
        was_open = not self._reasons
        known = reason in self._reasons
        self._reasons[reason] = message
        self._open.clear()
        if not known:
            self._emit(Paused(reason, message, resume_in_seconds))
        if was_open:
            for listener in list(self._interrupt_listeners):
                listener(reason)

    def lift(self, reason: PauseReason) -> None:
        if self._reasons.pop(reason, None) is None:
            return
        self._emit(Resumed(reason))
        if not self._reasons:
            self._open.set()

    async def wait_open(self) -> None:
        while self._reasons:
            await self._open.wait()
