"""Bandwidth limits on virtual time, and byte counts checked against a real loopback server."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest

from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.http import HttpOptions, make_async_client
from celeste_desktop.net.shaping import (
    ByteMeter,
    RateLimiter,
    ShapedTransport,
    request_head_size,
    response_head_size,
)

if TYPE_CHECKING:
    from conftest import LoopbackServer

MiB = 1 << 20


async def pump(limiter: RateLimiter, clock: FakeClock, seconds: float, piece: int) -> int:
    sent = 0
    while clock.elapsed < seconds:
        await limiter.acquire(piece)
        sent += piece
    return sent


# -- RateLimiter -------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8_000, 100_000, 2_500_000])
async def test_rate_is_accurate_over_a_minute(clock: FakeClock, rate: int) -> None:
    limiter = RateLimiter(rate, clock=clock)
    sent = await pump(limiter, clock, 60, max(1024, rate // 200))
    assert sent == pytest.approx(rate * 60, rel=0.05)


async def test_concurrent_acquirers_share_the_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(50_000, clock=clock)
    totals = await asyncio.gather(*(pump(limiter, clock, 60, 1500 * (i + 1)) for i in range(4)))
    assert sum(totals) == pytest.approx(50_000 * 60, rel=0.05)
    assert min(totals) > 0


async def test_rate_can_change_at_run_time(clock: FakeClock) -> None:
    limiter = RateLimiter(100_000, clock=clock)
    first = await pump(limiter, clock, 30, 2048)
    limiter.set_rate(20_000)
    second = await pump(limiter, clock, 60, 2048)
    assert first == pytest.approx(3_000_000, rel=0.05)
    assert second == pytest.approx(600_000, rel=0.05)
    assert limiter.burst == 5000


async def test_lowering_the_rate_takes_effect_for_a_waiter(clock: FakeClock) -> None:
    limiter = RateLimiter(1000, clock=clock, burst=1000)
    await limiter.acquire(1000)  # bucket empty
    waiter = asyncio.create_task(limiter.acquire(100_000))  # 100 s at this rate
    await clock.sleep(5)
    limiter.set_rate(None)
    await waiter
    assert clock.elapsed < 7


@pytest.mark.parametrize("rate", [None, 0])
async def test_no_limit_never_waits(clock: FakeClock, rate: int | None) -> None:
    limiter = RateLimiter(rate, clock=clock)
    for _ in range(1000):
        await limiter.acquire(MiB)
    assert clock.elapsed == 0
    assert limiter.rate is None


async def test_a_request_larger_than_the_burst_waits_its_time(clock: FakeClock) -> None:
    limiter = RateLimiter(10_000, clock=clock)
    assert limiter.burst == 2500
    await limiter.acquire(100_000)
    assert clock.elapsed == pytest.approx((100_000 - 2500) / 10_000)


def test_byte_meter_listeners() -> None:
    meter = ByteMeter()
    seen: list[tuple[int, int]] = []
    meter.add_listener(lambda s, r: seen.append((s, r)))
    meter.count_sent(10)
    meter.count_received(7)
    meter.count_sent(0)
    assert (meter.sent, meter.received) == (10, 7)
    assert seen == [(10, 0), (0, 7)]


# -- ShapedTransport with in-process transports -------------------------------------------------


class Sink(httpx.AsyncBaseTransport):
    """Consumes request bodies chunk by chunk like a socket would; answers a streamed body."""

    def __init__(self, clock: FakeClock, response_size: int = 0, chunk: int = MiB) -> None:
        self.clock = clock
        self.response_size = response_size
        self.chunk = chunk
        self.received = 0
        self.largest_piece = 0
        self.finished_at = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for piece in request.stream:
            self.received += len(piece)
            self.largest_piece = max(self.largest_piece, len(piece))
        self.finished_at = self.clock.elapsed
        return httpx.Response(
            200, headers={"Content-Length": str(self.response_size)}, stream=Body(self.response_size, self.chunk)
        )


class Body(httpx.AsyncByteStream):
    def __init__(self, size: int, chunk: int = MiB) -> None:
        self.size, self.chunk = size, chunk
        self.block = b"\0" * chunk  # one block reused: the body itself is never in memory

    async def __aiter__(self) -> AsyncIterator[bytes]:
        left = self.size
        while left > 0:
            n = min(left, self.chunk)
            yield self.block if n == self.chunk else self.block[:n]
            left -= n


async def lazy_body(size: int, chunk: int = MiB) -> AsyncIterator[bytes]:
    async for block in Body(size, chunk):
        yield block


async def test_upload_is_paced_in_small_pieces(clock: FakeClock) -> None:
    sink = Sink(clock)
    up = RateLimiter(100_000, clock=clock)
    meter = ByteMeter()
    async with httpx.AsyncClient(transport=ShapedTransport(sink, meter=meter, up_limiter=up)) as c:
        await c.put("http://storage.test/upload", content=b"u" * 6_000_000)
    assert sink.received == 6_000_000
    assert sink.largest_piece <= up.burst
    assert sink.finished_at == pytest.approx(60, rel=0.05)
    assert meter.sent > 6_000_000


async def test_download_is_paced(clock: FakeClock) -> None:
    sink = Sink(clock, response_size=6_000_000)
    down = RateLimiter(100_000, clock=clock)
    transport = ShapedTransport(sink, down_limiter=down)
    async with (
        httpx.AsyncClient(transport=transport) as client,
        client.stream("GET", "http://graph.test/content") as response,
    ):
        total = sum([len(c) async for c in response.aiter_raw()])
    assert total == 6_000_000
    assert clock.elapsed == pytest.approx(60, rel=0.05)


async def test_a_gibibyte_streams_through_in_bounded_pieces(clock: FakeClock) -> None:
    sink = Sink(clock, response_size=1 << 30)
    meter = ByteMeter()
    # A limit so high it never waits, so the body is still cut into pieces.
    up = RateLimiter(1e15, clock=clock)
    down = RateLimiter(1e15, clock=clock)
    transport = ShapedTransport(sink, meter=meter, up_limiter=up, down_limiter=down)
    started = time.monotonic()
    async with httpx.AsyncClient(transport=transport) as client:
        request = client.build_request(
            "PUT",
            "http://storage.test/big",
            content=lazy_body(1 << 30),
            headers={"Content-Length": str(1 << 30)},
        )
        response = await client.send(request, stream=True)
        largest = 0
        async for piece in response.aiter_raw():
            largest = max(largest, len(piece))
        await response.aclose()
    assert sink.received == 1 << 30 and sink.largest_piece <= 64 * 1024 and largest <= 64 * 1024
    assert meter.sent > 1 << 30 and meter.received > 1 << 30
    assert time.monotonic() - started < 15


async def test_memory_stays_bounded(clock: FakeClock) -> None:
    sink = Sink(clock, response_size=64 * MiB)
    up = RateLimiter(1e15, clock=clock)
    transport = ShapedTransport(sink, meter=ByteMeter(), up_limiter=up, down_limiter=up)
    tracemalloc.start()
    try:
        async with httpx.AsyncClient(transport=transport) as client:
            request = client.build_request(
                "PUT",
                "http://storage.test/big",
                content=lazy_body(64 * MiB),
                headers={"Content-Length": str(64 * MiB)},
            )
            response = await client.send(request, stream=True)
            async for _ in response.aiter_raw():
                pass
            await response.aclose()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB


async def test_in_process_bodies_are_counted_too() -> None:
    meter = ByteMeter()

    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=b"r" * 300)

    transport = ShapedTransport(httpx.MockTransport(app), meter=meter)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post("http://x.test/a?b=c", content=b"s" * 1000)
    request = response.request
    assert meter.sent == request_head_size(request) + 1000
    assert meter.received == response_head_size(response) + 300


def test_head_sizes_match_http11_serialisation() -> None:
    request = httpx.Request("GET", "http://h.test/p?q=1", headers={"X-A": "b"})
    wire = b"GET /p?q=1 HTTP/1.1\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in request.headers.raw) + b"\r\n"
    assert request_head_size(request) == len(wire)
    response = httpx.Response(404, headers={"Content-Length": "0"})
    assert response_head_size(response) == len(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")


# -- counting against real sockets -------------------------------------------------------------


async def test_counts_match_the_bytes_on_a_real_socket(loopback: LoopbackServer) -> None:
    loopback.response_body = b"d" * 300_000
    meter = ByteMeter()
    async with make_async_client(HttpOptions(), meter=meter) as client:
        for _ in range(3):
            r = await client.post(f"{loopback.url}/upload?x=1", content=b"u" * 200_000)
            assert r.status_code == 200 and len(r.content) == 300_000
        r = await client.get(f"{loopback.url}/small")
        r = await client.put(f"{loopback.url}/chunked", content=lazy_body(150_000, 10_000))
    assert meter.sent == pytest.approx(loopback.received, rel=0.02)
    assert meter.received == pytest.approx(loopback.sent, rel=0.02)
    assert any(b"transfer-encoding: chunked" in h.lower() for h in loopback.request_heads)


async def test_limits_apply_on_a_real_socket(loopback: LoopbackServer, clock: FakeClock) -> None:
    loopback.response_body = b"d" * 500_000
    up = RateLimiter(50_000, clock=clock)
    down = RateLimiter(100_000, clock=clock)
    async with make_async_client(HttpOptions(), up_limiter=up, down_limiter=down) as client:
        await client.post(f"{loopback.url}/upload", content=b"u" * 250_000)
    # 250 kB up at 50 kB/s, then 500 kB down at 100 kB/s: about ten virtual seconds.
    assert clock.elapsed == pytest.approx(10, rel=0.05)
