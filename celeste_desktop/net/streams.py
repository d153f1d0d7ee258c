"""httpcore's network layer on asyncio's own transports, reading many TLS records per call.

httpx talks to the network through httpcore, and httpcore through a *network backend*. The
default one goes through anyio's TLS stream, which hands back one TLS record (16 KiB at most)
per read, each read wrapped in a cancel scope and an event-loop turn: on a 1 GiB download
that is 65,536 trips through Python, and it was most of the app's CPU time (3.7 CPU s per GiB
just to receive; see docs/performance.md, B1). asyncio's SSL transport decrypts everything
the socket had in one go and hands it over as one chunk, so this backend returns up to
:data:`READ_CHUNK` bytes per read.

The backend is httpcore's documented ``AsyncNetworkBackend`` interface; httpx, httpcore's
HTTP/1.1 state machine, the pool and the retry policy above it are unchanged. Errors map to
the same httpcore exceptions the anyio backend raises (so httpx raises the same
``ConnectError``/``ReadTimeout``/… with the original cause chained, which
:func:`celeste_desktop.net.replies.certificate_error` relies on).

Flow control both ways: reading pauses while more than :data:`READ_HIGH_WATER` bytes wait
unread (a slow consumer never makes the buffer grow), and a write waits while the transport's
own buffer is over its high-water mark.
"""

# httpcore's interface takes a ``timeout`` argument on every call:
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import ssl
import typing
from collections import deque
from collections.abc import Iterable

import httpcore

__all__ = ["READ_CHUNK", "READ_HIGH_WATER", "AsyncioBackend", "install_backend"]

READ_CHUNK = 256 * 1024  # the most one read returns (the rate limiters' granularity)
READ_HIGH_WATER = 256 * 1024  # unread bytes at which the socket stops being read
WRITE_HIGH_WATER = 256 * 1024  # the transport's buffer size at which a write waits

_SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Protocol(asyncio.Protocol):
    """Collects what arrives and wakes the one reader or writer waiting on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.closed = False  # closed by this side
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._read_paused_on: asyncio.Transport | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > READ_HIGH_WATER and self._read_paused_on is None and self.transport is not None:
            self._read_paused_on = self.transport
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake_reader()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self.error = exc
        self._wake_reader()
        self._write_paused = False
        self._wake_writer()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    # for the stream

    def take(self, wanted: int, limit: int) -> bytes:
        """The next chunk as it arrived when it holds ``wanted`` bytes or more (no copy), else
        small chunks joined up to ``limit`` bytes; reading resumes below the high-water mark."""
        first = self.chunks.popleft()
        if len(first) > limit:
            data, rest = first[:limit], first[limit:]
            self.chunks.appendleft(rest)
        elif len(first) < wanted and self.chunks and len(first) + len(self.chunks[0]) <= limit:
            parts = [first]
            size = len(first)
            while self.chunks and size + len(self.chunks[0]) <= limit:
                chunk = self.chunks.popleft()
                parts.append(chunk)
                size += len(chunk)
            data = b"".join(parts)
        else:
            data = first
        self.buffered -= len(data)
        paused_on = self._read_paused_on
        if paused_on is not None and self.buffered <= READ_HIGH_WATER // 2:
            self._read_paused_on = None
            if not paused_on.is_closing():
                paused_on.resume_reading()
        return data

    async def wait_readable(self, timeout: float | None) -> None:
        self._read_waiter = await_on = asyncio.get_running_loop().create_future()
        try:
            await _wait(await_on, timeout)
        finally:
            self._read_waiter = None

    async def drain(self, timeout: float | None) -> None:
        if not self._write_paused:
            return
        self._drain_waiter = await_on = asyncio.get_running_loop().create_future()
        try:
            await _wait(await_on, timeout)
        finally:
            self._drain_waiter = None

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def _wait(future: asyncio.Future[None], timeout: float | None) -> None:
    """Wait for ``future``; raise :class:`TimeoutError` after ``timeout`` seconds."""
    if timeout is None:
        await future
        return
    loop = asyncio.get_running_loop()
    expiry = loop.call_later(timeout, _expire, future)
    try:
        await future
    finally:
        expiry.cancel()


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: the raw TCP transport and, after :meth:`start_tls`, the TLS one."""

    def __init__(
        self,
        raw: asyncio.Transport,
        protocol: _Protocol,
        tls: asyncio.Transport | None = None,
    ) -> None:
        self._raw = raw
        self._protocol = protocol
        self._tls = tls

    @property
    def unread(self) -> int:
        """Bytes received and not yet read (bounded by the high-water mark plus one socket read)."""
        return self._protocol.buffered

    @property
    def _transport(self) -> asyncio.Transport:
        return self._tls if self._tls is not None else self._raw

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if protocol.closed:
            raise httpcore.ReadError("the connection is closed")
        while not protocol.chunks:
            if protocol.lost and protocol.error is not None:
                raise httpcore.ReadError(_describe(protocol.error)) from protocol.error
            if protocol.eof:
                return b""
            try:
                await protocol.wait_readable(timeout)
            except TimeoutError as exc:
                raise httpcore.ReadTimeout("timed out waiting for data") from exc
        return protocol.take(max_bytes, max(max_bytes, READ_CHUNK))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        transport = self._transport
        if protocol.lost or protocol.closed or transport.is_closing():
            error = protocol.error
            raise httpcore.WriteError(_describe(error) if error else "the connection is closed") from error
        transport.write(buffer)
        try:
            await protocol.drain(timeout)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("timed out sending data") from exc
        if protocol.lost and protocol.error is not None:
            raise httpcore.WriteError(_describe(protocol.error)) from protocol.error

    async def aclose(self) -> None:
        # Like httpcore's anyio backend: no TLS close_notify round trip, the socket just closes.
        # Marked at once (asyncio reports the loss a loop turn later): the pool must see the
        # connection as unusable straight away (storage.spool.CloseOnError relies on it).
        self._protocol.closed = True
        self._raw.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    self._raw,
                    self._protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                )
        except TimeoutError as exc:
            self._raw.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from exc
        except (OSError, ssl.SSLError, EOFError) as exc:
            self._raw.close()
            raise httpcore.ConnectError(_describe(exc)) from exc
        if tls is None:  # the peer closed during the handshake
            self._raw.close()
            raise httpcore.ConnectError("the server closed the connection during the TLS handshake")
        tls.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._protocol.transport = tls
        return AsyncioStream(self._raw, self._protocol, tls)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "ssl_object":
            return self._tls.get_extra_info("ssl_object") if self._tls is not None else None
        if info == "client_addr":
            return self._raw.get_extra_info("sockname")
        if info == "server_addr":
            return self._raw.get_extra_info("peername")
        if info == "socket":
            return self._raw.get_extra_info("socket")
        if info == "is_readable":
            # httpcore asks this of idle keep-alive connections: anything arriving (or the
            # server's close) means the connection cannot take another request.
            protocol = self._protocol
            return bool(protocol.chunks) or protocol.eof or protocol.closed
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if text else exc.__class__.__name__


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's event loop and transports."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                raw, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    happy_eyeballs_delay=0.25,  # RFC 8305: IPv6 first, IPv4 soon after
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(_describe(exc)) from exc
        sock = raw.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        raw.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        return AsyncioStream(raw, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                raw, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(_describe(exc)) from exc
        return AsyncioStream(raw, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def install_backend(transport: object, backend: httpcore.AsyncNetworkBackend) -> None:
    """Make ``transport`` (an ``httpx.AsyncHTTPTransport``) open its connections through
    ``backend``.

    httpx builds its httpcore pool (a plain one, or the proxy's) without a way to pass a
    backend; the pool keeps the backend it hands each new connection in one attribute. A
    test checks that a real request goes through ``backend``, so an httpx or httpcore that
    moves this fails loudly instead of silently falling back to anyio.
    """
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx/httpcore does not expose the connection pool's network backend")
    pool._network_backend = backend
