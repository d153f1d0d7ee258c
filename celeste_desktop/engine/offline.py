"""Waiting for the link to come back: one cheap check at a time, spaced further and further apart.

A satellite link can be down for hours. Re-checking it costs a connection each time (and on a
metered link, bytes), so the checks start ``first`` seconds apart and double up to ``maximum``
(5 s, 10 s, 20 s … 5 min by default), never a tight loop. The engine waits this way inside a
job, and the GUI while no job runs; both take the clock, so tests wait in virtual time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from celeste_desktop.net.clock import Clock

FIRST_CHECK_S = 5.0
MAX_CHECK_S = 300.0


@dataclass(frozen=True)
class LinkBackoff:
    """How far apart the checks are: ``first`` seconds, doubling up to ``maximum``."""

    first: float = FIRST_CHECK_S
    maximum: float = MAX_CHECK_S


async def wait_for_link(
    probe: Callable[[], Awaitable[bool]],
    clock: Clock,
    *,
    backoff: LinkBackoff = LinkBackoff(),
    give_up_after: float = 0.0,
    wake: asyncio.Event | None = None,
) -> bool:
    """Sleep, then ask ``probe`` whether the link is back; again with a longer sleep until it is.

    True once ``probe`` says yes; False when ``give_up_after`` seconds (> 0) have been waited.
    Setting ``wake`` cuts the current sleep short (a person pressed "try now", or cancelled):
    the check then runs at once and the event is cleared.
    """
    waited = 0.0
    delay = backoff.first
    while give_up_after <= 0 or waited < give_up_after:
        await _sleep(clock, delay, wake)
        waited += delay
        if await probe():
            return True
        delay = min(delay * 2, backoff.maximum)
    return False


async def _sleep(clock: Clock, seconds: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await clock.sleep(seconds)
        return
    if wake.is_set():
        wake.clear()
        return
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    woken = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, woken):
            task.cancel()
        await asyncio.gather(sleeper, woken, return_exceptions=True)
    wake.clear()
