"""A small HTTP/1.1 server on asyncio and h11, the base of every simulator.

The simulators must misbehave the way real links and services do: drop a connection after N
bytes, stall on a satellite round trip, throttle bandwidth. A hand-held socket gives that
control; h11 (already a dependency of httpx) does the HTTP parsing. Each server listens on
127.0.0.1 with an ephemeral port, optionally over TLS, on an event loop of its own (see
``SimLoop``) so that a test, the demo GUI or a benchmark can run it beside the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
import struct
import threading
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import h11

from celeste_desktop.sim.faults import Fault, FaultPlan, LinkShaper

_T = TypeVar("_T")
_READ_SIZE = 256 * 1024
_MAX_HEADER_BYTES = 64 * 1024
_COALESCE_BYTES = 64 * 1024  # a first body chunk up to this size is sent in one write with the head


class ConnectionDropped(Exception):
    """Raised inside a handler's body stream when the peer (or a fault) ended the connection."""


@dataclass
class Request:
    """One parsed request. The body is a stream: read it once, with ``read()`` or ``stream()``."""

    method: str
    target: str
    path: str
    query: dict[str, str]
    query_multi: dict[str, list[str]]
    headers: dict[str, str]
    client: str
    _body: AsyncIterator[bytes]
    _consumed: bool = False
    route_params: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # what handlers learnt (a checked key's claims)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    async def stream(self) -> AsyncIterator[bytes]:
        self._consumed = True
        async for chunk in self._body:
            yield chunk

    async def read(self, limit: int = 1 << 40) -> bytes:
        parts: list[bytes] = []
        total = 0
        async for chunk in self.stream():
            total += len(chunk)
            if total > limit:
                raise ValueError("request body too large")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self) -> Any:
        return json.loads(await self.read(limit=64 * 1024 * 1024) or b"null")

    async def form(self) -> dict[str, str]:
        raw = (await self.read(limit=1024 * 1024)).decode("utf-8", "replace")
        return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


@dataclass
class Response:
    """A response; ``body`` is bytes or an async iterator of chunks (streamed, bounded memory)."""

    status: int = 200
    body: bytes | AsyncIterator[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # for streamed bodies: the Content-Length to announce
    close: bool = False

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode()
        hdrs = {"content-type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status=status, body=body, headers=hdrs)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status=status, body=text.encode(), headers={"content-type": "text/html; charset=utf-8"})

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status=status, body=text.encode(), headers={"content-type": "text/plain; charset=utf-8"})


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    """Maps (method, path pattern) to handlers; ``{name}`` captures one segment, ``{name:path}`` the rest."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", pattern)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return decorator

    async def __call__(self, request: Request) -> Response:
        allowed = False
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            if method not in (request.method, "*"):
                allowed = True
                continue
            request.route_params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            return await handler(request)
        if allowed:
            return Response.json({"error": "method not allowed"}, status=405)
        return Response.json({"error": "not found", "path": request.path}, status=404)


@dataclass
class ServerStats:
    """Plain-text HTTP bytes and requests seen by one server; the data-budget tests compare against it."""

    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connections: int = 0
    paths: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.requests = self.bytes_in = self.bytes_out = self.connections = 0
        self.paths.clear()


class SimServer:
    """One HTTP(S) server on 127.0.0.1 with fault injection; start it on a ``SimLoop``."""

    def __init__(
        self,
        name: str,
        app: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        service_for: Callable[[str], str] | None = None,
    ) -> None:
        self.name = name
        # Maps a request path to the fault service name; one origin may host several services
        # (Supabase serves Storage under /storage/v1 and PostgREST under /rest/v1).
        self.service_for = service_for
        self.app = app
        self.ssl_context = ssl_context
        self.faults = faults or FaultPlan()
        self.host = host
        self.port = 0
        self.stats = ServerStats()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.record_paths = False

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        # A restart binds the port it had, so settings that point at it work again.
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, self.port, ssl=self.ssl_context, limit=_READ_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    # -- connection handling -------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.stats.connections += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADER_BYTES)
        link = self.faults.link
        try:
            if link is not None:
                await link.connect_delay(tls=self.ssl_context is not None)
            while True:
                event = await self._next_event(conn, reader, link)
                if isinstance(event, h11.ConnectionClosed) or event is None:
                    break
                if not isinstance(event, h11.Request):
                    break
                keep_going = await self._handle_request(conn, event, reader, writer, link)
                if not keep_going:
                    break
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:
                    break
        except (ConnectionError, ConnectionDropped, h11.RemoteProtocolError, ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader, link: LinkShaper | None) -> Any:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(_READ_SIZE)
                if link is not None and data:
                    await link.upstream(len(data))
                self.stats.bytes_in += len(data)
                conn.receive_data(data)
                continue
            if event is h11.PAUSED:
                return None
            return event

    async def _handle_request(
        self,
        conn: h11.Connection,
        event: h11.Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: LinkShaper | None,
    ) -> bool:
        self.stats.requests += 1
        target = event.target.decode("latin-1")
        parsed = urllib.parse.urlsplit(target)
        query_multi = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        method = event.method.decode("ascii")
        path = urllib.parse.unquote(parsed.path)
        if self.record_paths:
            self.stats.paths.append(f"{method} {parsed.path}")

        async def body() -> AsyncIterator[bytes]:
            while True:
                ev = await self._next_event(conn, reader, link)
                if isinstance(ev, h11.Data):
                    yield bytes(ev.data)
                elif isinstance(ev, h11.EndOfMessage):
                    return
                else:
                    raise ConnectionDropped("connection ended inside the request body")

        request = Request(
            method=method,
            target=target,
            path=path,
            query={k: v[-1] for k, v in query_multi.items()},
            query_multi=query_multi,
            headers=headers,
            client=str(writer.get_extra_info("peername")),
            _body=body(),
        )
        if link is not None:
            await link.request_delay()
        service = self.service_for(request.path) if self.service_for else self.name
        fault = self.faults.pick(service, request.method, request.path)
        response = await self._apply_fault_before(fault, request)
        if response is None:
            try:
                response = await self.app(request)
            except ConnectionDropped:
                return False
            except Exception as exc:  # a simulator bug must show up as a 500, not a hang
                response = Response.json({"error": {"code": "simulatorError", "message": repr(exc)}}, 500)
        if fault is not None and fault.kind == "malformed":
            response = Response(
                status=200, body=b'{"value": [ {"id": "truncated', headers={"content-type": "application/json"}
            )
        drain_ok = True
        if not request._consumed and conn.their_state is h11.SEND_BODY:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) <= 64 * 1024:
                # A bodiless GET (or a small body the handler ignored): read its end and keep
                # the connection alive, as real servers do.
                try:
                    await request.read()
                except ConnectionDropped:
                    return False
            elif "transfer-encoding" not in headers and declared is None:
                await request.read()
            else:
                # Like the real Storage server: an error answered before a large body was read
                # closes the connection afterwards instead of swallowing the upload.
                response.close = True
                drain_ok = False
        await self._send(conn, writer, response, link, fault)
        return drain_ok and not response.close

    async def _apply_fault_before(self, fault: Fault | None, request: Request) -> Response | None:
        if fault is None:
            return None
        if fault.kind in ("429", "503"):
            headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
            code = "activityLimitReached" if fault.kind == "429" else "serviceNotAvailable"
            status = int(fault.kind)
            return Response.json({"error": {"code": code, "message": "Simulated throttling"}}, status, headers)
        if fault.kind == "500":
            return Response.json({"error": {"code": "generalException", "message": "Simulated failure"}}, 500)
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        return None

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: Response,
        link: LinkShaper | None,
        fault: Fault | None,
    ) -> None:
        headers = {k.lower(): v for k, v in response.headers.items()}
        body = response.body
        if isinstance(body, bytes):
            headers["content-length"] = str(len(body))
        elif response.length is not None:
            headers["content-length"] = str(response.length)
        if response.close:
            headers["connection"] = "close"
        headers.setdefault("server", f"celeste-sim-{self.name}")
        reset_after = fault.reset_after if fault is not None and fault.kind == "reset" else None
        sent = 0

        async def write(data: bytes) -> None:
            nonlocal sent
            if reset_after is not None and sent + len(data) > reset_after:
                cut = max(0, reset_after - sent)
                if cut:
                    writer.write(data[:cut])
                    self.stats.bytes_out += cut
                    with contextlib.suppress(Exception):
                        await writer.drain()
                _abort(writer)
                raise ConnectionDropped("fault: reset")
            # A random reset falls at a byte: what comes before it goes out, then the connection
            # drops (checked before the write, so a reply sent in one write can still break).
            random_cut = self.faults.random_reset(len(data))
            if random_cut is not None:
                data = data[:random_cut]
            if link is not None:
                await link.downstream(len(data))
            writer.write(data)
            self.stats.bytes_out += len(data)
            sent += len(data)
            await writer.drain()
            if random_cut is not None:
                _abort(writer)
                raise ConnectionDropped("fault: random reset")

        # Each write is a TLS record and a send() (the costliest part of a small answer), so the
        # head goes out with the body when the body is in hand, or with a small first chunk.
        pending = (
            conn.send(
                h11.Response(
                    status_code=response.status, headers=list(headers.items()), reason=_reason(response.status)
                )
            )
            or b""
        )
        if isinstance(body, bytes):
            if body:
                pending += conn.send(h11.Data(data=body)) or b""
        else:
            try:
                async for chunk in body:
                    if not chunk:
                        continue
                    data = conn.send(h11.Data(data=chunk)) or b""
                    if pending and len(chunk) <= _COALESCE_BYTES:
                        data, pending = pending + data, b""
                    elif pending:
                        await write(pending)
                        pending = b""
                    await write(data)
            finally:
                aclose = getattr(body, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()
        pending += conn.send(h11.EndOfMessage()) or b""
        if pending:
            await write(pending)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a dropped satellite link looks to the peer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


_REASONS = {
    200: b"OK",
    201: b"Created",
    202: b"Accepted",
    204: b"No Content",
    206: b"Partial Content",
    302: b"Found",
    304: b"Not Modified",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    410: b"Gone",
    412: b"Precondition Failed",
    413: b"Payload Too Large",
    416: b"Range Not Satisfiable",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    507: b"Insufficient Storage",
}


def _reason(status: int) -> bytes:
    return _REASONS.get(status, b"")


class SimLoop:
    """An asyncio event loop in a daemon thread that hosts the simulators beside the app."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="celeste-sim", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, _T], timeout: float = 30.0) -> _T:
        """Run a coroutine on the simulator loop and wait for its result from another thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_servers(self, servers: Iterable[SimServer]) -> None:
        async def start_all() -> None:
            for server in servers:
                await server.start()

        self.call(start_all())

    def stop_servers(self, servers: Iterable[SimServer]) -> None:
        async def stop_all() -> None:
            for server in servers:
                await server.stop()

        with contextlib.suppress(Exception):
            self.call(stop_all(), timeout=10)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
