"""FakeClock: virtual time that moves only when every task waits, waking sleepers in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from celeste_desktop.net.clock import Clock, FakeClock, SystemClock


async def test_sleep_advances_virtual_time_without_waiting(clock: FakeClock) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await clock.sleep(3600)
    assert clock.elapsed == 3600
    assert clock.now() == datetime(2024, 1, 1, 1, tzinfo=UTC)
    assert loop.time() - started < 1.0


async def test_sleepers_wake_in_deadline_order_then_arrival_order(clock: FakeClock) -> None:
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.elapsed))

    await asyncio.gather(sleeper("c", 3), sleeper("a", 1), sleeper("b1", 2), sleeper("b2", 2), sleeper("z", 0))
    assert woke == [("z", 0), ("a", 1), ("b1", 2), ("b2", 2), ("c", 3)]


async def test_time_waits_for_runnable_work(clock: FakeClock) -> None:
    """A task that keeps yielding holds time still: the advancer only jumps when idle."""
    steps = 0

    async def busy() -> None:
        nonlocal steps
        for _ in range(200):
            steps += 1
            await asyncio.sleep(0)

    async def sleeper() -> float:
        await clock.sleep(5)
        return steps

    busy_task = asyncio.create_task(busy())
    seen = await sleeper()
    await busy_task
    assert seen == 200
    assert clock.elapsed == 5


async def test_cancelled_sleeper_does_not_block_others(clock: FakeClock) -> None:
    long = asyncio.create_task(clock.sleep(100))
    await asyncio.sleep(0)
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long
    await clock.sleep(1)
    assert clock.elapsed == 1


async def test_manual_advance() -> None:
    clock = FakeClock(auto_advance=False, start=datetime(2030, 5, 1, tzinfo=UTC))
    task = asyncio.create_task(clock.sleep(10))
    await asyncio.sleep(0)
    assert clock.sleeping == 1
    clock.advance(9.5)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.5)
    await task
    assert clock.now() == datetime(2030, 5, 1, tzinfo=UTC) + timedelta(seconds=10)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_naive_start_refused() -> None:
    with pytest.raises(ValueError):
        FakeClock(start=datetime(2024, 1, 1))


async def test_system_clock_is_a_clock() -> None:
    system: Clock = SystemClock()
    before = system.monotonic()
    await system.sleep(0)
    assert system.monotonic() >= before
    assert system.now().tzinfo is UTC
