"""Fakes shared by the net tests: a virtual clock, a scripted service, a loopback HTTP server
that counts the bytes it really receives and sends."""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trustme

from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.policy import PolicyEvent


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class MaxRandom(random.Random):
    """Full jitter that always picks the top of the range, so delays are predictable."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def max_random() -> random.Random:
    return MaxRandom()


@dataclass
class Events:
    items: list[PolicyEvent] = field(default_factory=list)

    def __call__(self, event: PolicyEvent) -> None:
        self.items.append(event)

    def of(self, kind: type[PolicyEvent]) -> list[PolicyEvent]:
        return [e for e in self.items if isinstance(e, kind)]


@pytest.fixture
def events() -> Events:
    return Events()


Reply = httpx.Response | Exception
Handler = Callable[[httpx.Request], Awaitable[Reply]]


@dataclass
class FakeService:
    """Answers from a script (or a handler), records when each request arrived and how many
    were in flight at once. Each request takes `latency` virtual seconds."""

    clock: FakeClock
    script: list[Reply] = field(default_factory=list)
    default: Callable[[], Reply] = lambda: httpx.Response(200, json={"ok": True})
    latency: float = 0.0
    arrivals: list[float] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    peaks_after: list[tuple[float, int]] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.arrivals.append(self.clock.monotonic())
        self.requests.append(request)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.peaks_after.append((self.clock.monotonic(), self.in_flight))
        try:
            if self.latency:
                await self.clock.sleep(self.latency)
            reply = self.script.pop(0) if self.script else self.default()
        finally:
            self.in_flight -= 1
        if isinstance(reply, Exception):
            raise reply
        return reply

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


@pytest.fixture
def service(clock: FakeClock) -> FakeService:
    return FakeService(clock)


# -- a real loopback server --------------------------------------------------------------------


@dataclass
class LoopbackServer:
    """HTTP/1.1 on 127.0.0.1 that counts every byte read and written, keeps connections
    alive, reads Content-Length and chunked bodies and answers `response_body`."""

    response_body: bytes = b"hello"
    received: int = 0
    sent: int = 0
    request_heads: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _read(self, reader: asyncio.StreamReader, n: int) -> bytes:
        data = await reader.readexactly(n)
        self.received += len(data)
        return data

    async def _line(self, reader: asyncio.StreamReader) -> bytes:
        data = await reader.readuntil(b"\r\n")
        self.received += len(data)
        return data

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.received += len(head)
                self.request_heads.append(head)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.decode("latin-1").partition(":") for line in head.split(b"\r\n")[1:] if line)
                }
                if "content-length" in headers:
                    await self._read(reader, int(headers["content-length"]))
                elif "chunked" in headers.get("transfer-encoding", ""):
                    while True:
                        size = int((await self._line(reader)).strip(), 16)
                        await self._read(reader, size + 2)
                        if size == 0:
                            break
                response = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    + f"Content-Length: {len(self.response_body)}\r\n\r\n".encode()
                    + self.response_body
                )
                writer.write(response)
                await writer.drain()
                self.sent += len(response)
        finally:
            writer.close()


@pytest.fixture
async def loopback() -> AsyncIterator[LoopbackServer]:
    server = LoopbackServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    """The CA as a PEM file, like the one a company's TLS-inspecting proxy hands out."""
    path = tmp_path / "company-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def tls_loopback(ca: trustme.CA) -> AsyncIterator[LoopbackServer]:
    """The loopback server over TLS, with a certificate for localhost issued by `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = LoopbackServer()
    await server.start(ssl_context=context)
    try:
        yield server
    finally:
        await server.stop()
