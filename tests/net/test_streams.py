"""httpcore on asyncio's transports (net/streams.py), over real loopback sockets with TLS.

Each server here is a few lines of asyncio doing one thing badly on purpose (stalling,
resetting, never reading), so each test pins one path of the backend: large reads, flow
control both ways, timeouts, broken connections and stale keep-alive connections.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpcore
import httpx
import pytest
import trustme
from proxy_helpers import ConnectProxy

from celeste_desktop.net.http import HttpOptions, make_async_client
from celeste_desktop.net.replies import certificate_error
from celeste_desktop.net.streams import READ_CHUNK, READ_HIGH_WATER, AsyncioStream, install_backend

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
MIB = 1024 * 1024


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, length


def _reply_head(length: int) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n".encode()


@asynccontextmanager
async def _server(handler: Handler, ca: trustme.CA | None = None) -> AsyncIterator[str]:
    context = None
    if ca is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def _options(ca_file: Path | None = None, *, read_timeout: float = 120.0, connect_timeout: float = 30.0) -> HttpOptions:
    return HttpOptions(
        ca_bundle=ca_file, use_system_trust=False, read_timeout=read_timeout, connect_timeout=connect_timeout
    )


async def test_requests_go_through_asyncio_streams_and_read_many_tls_records_at_once(
    ca: trustme.CA, ca_file: Path
) -> None:
    body = bytes(range(256)) * (32 * 1024)  # 8 MiB

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_reply_head(len(body)) + body)
        await writer.drain()
        writer.close()

    async with (
        _server(serve, ca) as url,
        make_async_client(_options(ca_file)) as client,
        client.stream("GET", f"{url}/big") as response,
    ):
        stream = response.extensions["network_stream"]
        assert isinstance(stream, AsyncioStream)
        assert stream.get_extra_info("ssl_object") is not None
        received = bytearray()
        sizes = []
        async for chunk in response.aiter_raw():
            await asyncio.sleep(0.002)  # a consumer slower than loopback: data piles up
            sizes.append(len(chunk))
            received += chunk
            # Reading stops while 256 KiB wait unread, whatever the sender does.
            assert stream.unread <= READ_HIGH_WATER + READ_CHUNK
    assert bytes(received) == body
    assert 16 * 1024 < max(sizes) <= READ_CHUNK  # many 16 KiB TLS records per read
    assert len(sizes) < len(body) // (16 * 1024) // 4


async def test_a_server_that_stalls_gives_a_read_timeout() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_reply_head(100) + b"x" * 10)
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    async with _server(serve) as url, make_async_client(_options(read_timeout=0.3)) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{url}/slow")
        assert loop.time() - started < 3


@pytest.mark.parametrize("abort", [False, True], ids=["closed", "reset"])
async def test_a_connection_broken_mid_body_is_a_transport_error(abort: bool) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_reply_head(MIB) + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(0.05)
        if abort:
            writer.transport.abort()
        else:
            writer.close()

    async with _server(serve) as url, make_async_client(_options()) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(f"{url}/cut")


async def test_uploads_wait_for_a_slow_reader_and_arrive_whole() -> None:
    size = 24 * MIB
    got = bytearray()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, length = await _read_request(reader)
        while len(got) < length:
            got.extend(await reader.read(256 * 1024))
            await asyncio.sleep(0.001)
        writer.write(_reply_head(2) + b"ok")
        await writer.drain()
        writer.close()

    async def body() -> AsyncIterator[bytes]:
        for i in range(size // MIB):
            yield bytes([i]) * MIB

    async with _server(serve) as url, make_async_client(_options()) as client:
        response = await client.post(f"{url}/up", content=body(), headers={"Content-Length": str(size)})
    assert response.text == "ok"
    assert len(got) == size and got[-1] == size // MIB - 1


async def test_a_server_that_never_reads_gives_a_write_timeout() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(10)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield b"\0" * MIB

    async with _server(serve) as url, make_async_client(_options(read_timeout=0.5)) as client:
        with pytest.raises(httpx.WriteTimeout):
            await client.post(f"{url}/up", content=body(), headers={"Content-Length": str(256 * MIB)})


async def test_a_keep_alive_connection_the_server_closed_is_not_reused() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)
        writer.write(_reply_head(2) + b"ok")
        await writer.drain()
        writer.close()  # the server's idle timeout, right after the reply

    async with _server(serve) as url, make_async_client(_options()) as client:
        for _ in range(3):
            response = await client.get(f"{url}/again")
            assert response.text == "ok"
            await asyncio.sleep(0.05)  # the close arrives while the connection sits idle
    assert connections == 3


async def test_a_server_that_never_starts_tls_gives_a_connect_timeout(ca_file: Path) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with _server(serve) as url, make_async_client(_options(ca_file, connect_timeout=0.3)) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get(url.replace("http://", "https://"))


async def test_an_untrusted_certificate_keeps_its_cause_for_the_message(ca: trustme.CA) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    async with _server(serve, ca) as url, make_async_client(_options()) as client:
        with pytest.raises(httpx.ConnectError) as raised:
            await client.get(url)
    assert certificate_error(raised.value) is not None


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with _server(lambda r, w: asyncio.sleep(0)) as url:
        pass  # the port is free again
    async with make_async_client(_options()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)


async def test_a_cancelled_read_leaves_the_client_usable() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await _read_request(reader)
        if b"/stall" in head:
            await asyncio.sleep(5)
        writer.write(_reply_head(2) + b"ok")
        await writer.drain()
        writer.close()

    async with _server(serve) as url, make_async_client(_options()) as client:
        task = asyncio.create_task(client.get(f"{url}/stall"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await client.get(f"{url}/fine")).text == "ok"


def test_installing_on_something_else_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="network backend"):
        install_backend(object(), object())  # type: ignore[arg-type]


async def test_a_closed_stream_is_unusable_at_once(ca: trustme.CA, ca_file: Path) -> None:
    """The pool asks ``is_readable`` of a connection right after closing it (CloseOnError):
    the answer must be yes before asyncio gets round to reporting the loss."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_reply_head(2) + b"ok")
        await writer.drain()
        await asyncio.sleep(5)

    async with _server(serve, ca) as url, make_async_client(_options(ca_file)) as client:
        async with client.stream("GET", url) as response:
            stream = response.extensions["network_stream"]
            await response.aread()
        assert not stream.get_extra_info("is_readable")  # idle and healthy
        await stream.aclose()
        assert stream.get_extra_info("is_readable")
        with pytest.raises(httpcore.ReadError):
            await stream.read(10)
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"GET / HTTP/1.1\r\n\r\n")


async def test_tls_starts_inside_a_proxy_tunnel(ca: trustme.CA, ca_file: Path) -> None:
    """A ship's proxy: CONNECT in plain HTTP on the connection, then TLS inside the tunnel."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await _read_request(reader)
            writer.write(_reply_head(7) + b"tunnels")
            await writer.drain()

    proxy = ConnectProxy()
    try:
        options = HttpOptions(ca_bundle=ca_file, use_system_trust=False, proxy=f"http://127.0.0.1:{proxy.port}")
        async with _server(serve, ca) as url, make_async_client(options) as client:
            for _ in range(2):  # the second request reuses the tunnel
                response = await client.get(f"{url}/through")
                assert response.text == "tunnels"
                assert isinstance(response.extensions["network_stream"], AsyncioStream)
    finally:
        proxy.close()
    assert proxy.connects == [url.removeprefix("https://")]
