"""Traffic shaping and byte metering: bandwidth caps that keep the satellite link usable, and
the count of bytes on the wire that the data budget is charged with.

`ShapedTransport` wraps the real transport. It counts what HTTP/1.1 puts on the wire (request
line, headers, body with any chunked framing; status line, headers, raw body) and paces
request and response bodies through `RateLimiter`s, piece by piece, so memory stays bounded
whatever the body size. TLS records and handshakes, proxy CONNECTs and TCP/IP headers are not
counted: the meter sees the HTTP layer, a few per cent under what the provider bills.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx

from celeste_desktop.net.clock import Clock

__all__ = ["ByteMeter", "RateLimiter", "ShapedTransport", "request_head_size", "response_head_size"]

_MIN_BURST = 1024.0
_MAX_PIECE = 64 * 1024
# Longest single wait, so a rate changed at run time takes effect within about a second.
_MAX_WAIT_SLICE = 1.0


class RateLimiter:
    """Token bucket in bytes per second; ``None`` or 0 means unlimited.

    A request larger than the bucket is let through once enough time has passed for its
    bytes (the bucket goes into debt), so callers may ask for any size; `ShapedTransport`
    asks in pieces no bigger than the burst so traffic stays smooth. Waiters are served in
    arrival order.
    """

    def __init__(self, rate: float | None, *, clock: Clock, burst: float | None = None) -> None:
        self._clock = clock
        self._fixed_burst = burst
        self._rate: float | None = None
        self._burst = _MIN_BURST
        self._last = clock.monotonic()
        self._lock = asyncio.Lock()
        self._apply_rate(rate)
        self._tokens = self._burst

    @property
    def rate(self) -> float | None:
        """Bytes per second, or None when unlimited."""
        return self._rate

    @property
    def burst(self) -> float:
        """The most bytes that may pass at once after an idle spell."""
        return self._burst

    def set_rate(self, rate: float | None) -> None:
        """Change the limit; bytes already granted stay granted."""
        self._refill()
        self._apply_rate(rate)
        self._tokens = min(self._tokens, self._burst)

    async def acquire(self, size: int) -> None:
        """Wait until `size` bytes may pass."""
        if size <= 0 or self._rate is None:
            return
        async with self._lock:
            self._refill()
            self._tokens -= size
            # A thousandth of a byte of float rounding must not turn into endless tiny waits.
            while self._rate is not None and self._tokens < -1e-3:
                await self._clock.sleep(min(-self._tokens / self._rate, _MAX_WAIT_SLICE))
                self._refill()
            if self._rate is None:
                self._tokens = max(self._tokens, 0.0)

    def _apply_rate(self, rate: float | None) -> None:
        self._rate = float(rate) if rate else None
        if self._fixed_burst is not None:
            self._burst = max(float(self._fixed_burst), 1.0)
        elif self._rate is not None:
            self._burst = max(self._rate / 4, _MIN_BURST)  # about a quarter second's worth
        if self._rate is None:
            self._tokens = self._burst

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if self._rate is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now


ByteListener = Callable[[int, int], None]


class ByteMeter:
    """Counts bytes sent and received; listeners get ``(sent, received)`` increments."""

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0
        self._listeners: list[ByteListener] = []

    def add_listener(self, listener: ByteListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: ByteListener) -> None:
        self._listeners.remove(listener)

    def count_sent(self, size: int) -> None:
        if size > 0:
            self.sent += size
            for listener in list(self._listeners):
                listener(size, 0)

    def count_received(self, size: int) -> None:
        if size > 0:
            self.received += size
            for listener in list(self._listeners):
                listener(0, size)


def _headers_size(raw: list[tuple[bytes, bytes]]) -> int:
    return sum(len(name) + len(value) + 4 for name, value in raw) + 2  # ": ", CRLF; blank line


def request_head_size(request: httpx.Request) -> int:
    """Bytes of the request line and headers as HTTP/1.1 writes them."""
    line = len(request.method) + 1 + len(request.url.raw_path) + len(" HTTP/1.1\r\n")
    return line + _headers_size(request.headers.raw)


def response_head_size(response: httpx.Response) -> int:
    """Bytes of the status line and headers as HTTP/1.1 writes them."""
    version = response.extensions.get("http_version", b"HTTP/1.1")
    reason = response.extensions.get("reason_phrase", response.reason_phrase.encode())
    line = len(version) + 5 + len(reason) + 2  # " NNN " and CRLF
    return line + _headers_size(response.headers.raw)


def _is_chunked(headers: httpx.Headers) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


def _chunk_framing(size: int) -> int:
    return len(f"{size:x}") + 4  # hex size, CRLF, data, CRLF


def _pieces(chunk: bytes, limiter: RateLimiter | None) -> list[bytes] | tuple[bytes]:
    if limiter is None or limiter.rate is None or len(chunk) <= 1:
        return (chunk,)
    step = max(1, int(min(limiter.burst, _MAX_PIECE)))
    if len(chunk) <= step:
        return (chunk,)
    view = memoryview(chunk)
    return [bytes(view[i : i + step]) for i in range(0, len(chunk), step)]


class _ShapedStream(httpx.AsyncByteStream):
    """Passes a body through a limiter and a meter, piece by piece."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        *,
        limiter: RateLimiter | None,
        count: Callable[[int], None] | None,
        chunked: bool,
    ) -> None:
        self._inner = inner
        self._limiter = limiter
        self._count = count
        self._chunked = chunked
        self.started = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        async for chunk in self._inner:
            if not chunk:
                continue
            # Large chunks are split so the limiter can pace them; each piece is a copy of at
            # most 64 KiB, never the whole body.
            for piece in _pieces(chunk, self._limiter):
                if self._limiter is not None:
                    await self._limiter.acquire(len(piece))
                if self._count is not None:
                    framing = _chunk_framing(len(piece)) if self._chunked else 0
                    self._count(len(piece) + framing)
                yield piece
        if self._chunked and self._count is not None:
            self._count(5)  # "0\r\n\r\n"

    async def aclose(self) -> None:
        await self._inner.aclose()


class ShapedTransport(httpx.AsyncBaseTransport):
    """Counts wire bytes and applies upload and download limits around another transport."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        meter: ByteMeter | None = None,
        up_limiter: RateLimiter | None = None,
        down_limiter: RateLimiter | None = None,
    ) -> None:
        self._inner = inner
        self._meter = meter
        self._up = up_limiter
        self._down = down_limiter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        head = request_head_size(request)
        if self._up is not None:
            await self._up.acquire(head)
        if self._meter is not None:
            self._meter.count_sent(head)
        upload: _ShapedStream | None = None
        if isinstance(request.stream, httpx.AsyncByteStream):
            upload = _ShapedStream(
                request.stream,
                limiter=self._up,
                count=self._meter.count_sent if self._meter else None,
                chunked=_is_chunked(request.headers),
            )
            request.stream = upload

        response = await self._inner.handle_async_request(request)

        if upload is not None and not upload.started and self._meter is not None:
            # An in-process transport (tests, simulators) that takes the body without
            # iterating the stream: count what it was handed.
            with contextlib.suppress(httpx.RequestNotRead):
                self._meter.count_sent(len(request.content))
        if self._meter is not None:
            self._meter.count_received(response_head_size(response))
        try:
            preloaded = response.content  # only in-process transports hand over read bodies
        except httpx.ResponseNotRead:
            pass
        else:
            if self._down is not None:
                await self._down.acquire(len(preloaded))
            if self._meter is not None:
                self._meter.count_received(len(preloaded))
            return response
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _ShapedStream(
                response.stream,
                limiter=self._down,
                count=self._meter.count_received if self._meter else None,
                chunked=_is_chunked(response.headers),
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
