"""The one retry-and-wait policy every remote call goes through (Graph, Storage, PostgREST, TUS…).

One function decides what a reply means (`replies.default_classifier`, or a service's own
`Classifier`), and one `RetryPolicy` acts on it:

- 429, or 503/509 with ``Retry-After``: every request through the policy waits behind a
  shared gate for that long (also those queued for a slot), then the allowed concurrency is
  halved and grows back by one every ``recover_after`` successes (AIMD). Without
  ``Retry-After`` the throttled request backs off alone (concurrency still halves).
- other 5xx, 408 and network errors: exponential backoff with full jitter, capped.
- 401: the caller's ``refresh`` hook runs once and the request is sent once more.
- 403, 404, 413, 507 and other 4xx: fail at once with a `RemoteError` subclass whose message
  a person can act on. Messages never carry headers or query strings (pre-authenticated URLs
  keep their secret there).

Use one `RetryPolicy` per remote service, so Graph throttling does not pause uploads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from celeste_desktop.domain.errors import MalformedResponse, RemoteError, ServiceUnavailable
from celeste_desktop.net.clock import Clock
from celeste_desktop.net.replies import (
    Action,
    Classifier,
    ErrorBody,
    Verdict,
    certificate_error,
    classify_status,
    default_classifier,
    describe_transport_error,
    failure_message,
    parse_error_body,
    parse_retry_after,
    read_error_reply,
    safe_text,
    safe_url,
    status_label,
    supabase_storage_classifier,
)

__all__ = [
    "Action",
    "BackingOff",
    "Classifier",
    "ErrorBody",
    "PolicyEvent",
    "Recovered",
    "RetryPolicy",
    "Throttled",
    "Verdict",
    "classify_status",
    "default_classifier",
    "parse_error_body",
    "parse_retry_after",
    "safe_text",
    "safe_url",
    "supabase_storage_classifier",
]


@dataclass(frozen=True)
class Throttled:
    """All requests to `service` are paused for `seconds`, then resume at `concurrency`."""

    service: str
    seconds: float
    reason: str
    concurrency: int


@dataclass(frozen=True)
class BackingOff:
    """One request waits `delay` seconds before attempt `attempt`."""

    service: str
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True)
class Recovered:
    """A request succeeded after throttling or backoff."""

    service: str
    concurrency: int


PolicyEvent = Throttled | BackingOff | Recovered


# -- the policy --------------------------------------------------------------------------------


class RetryPolicy:
    """Shared gate, adaptive concurrency and retries for every request sent through it."""

    def __init__(
        self,
        *,
        clock: Clock,
        max_concurrency: int = 8,
        max_attempts: int = 8,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        recover_after: int = 8,
        rng: random.Random | None = None,
        on_event: Callable[[PolicyEvent], None] | None = None,
    ) -> None:
        if max_concurrency < 1 or max_attempts < 1 or recover_after < 1:
            raise ValueError("max_concurrency, max_attempts and recover_after must be >= 1")
        self._clock = clock
        self._max_concurrency = max_concurrency
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._recover_after = recover_after
        self._rng = rng or random.Random()
        self._on_event = on_event
        self._limit = max_concurrency
        self._in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._paused_until = float("-inf")
        self._epoch = 0  # bumped on each cut, so one burst of 429s halves concurrency once
        self._successes = 0
        self._degraded: set[str] = set()

    @property
    def concurrency(self) -> int:
        """Requests allowed in flight right now."""
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def paused_for(self) -> float:
        """Seconds left in the shared pause (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock.monotonic())

    async def send(
        self,
        client: httpx.AsyncClient,
        build: Callable[[], httpx.Request],
        *,
        service: str,
        stream: bool = False,
        refresh: Callable[[], Awaitable[None]] | None = None,
        classify: Classifier | None = None,
        what: str | None = None,
        auth: httpx.Auth | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """Send a request built afresh by `build` for each attempt; retry as the policy says.

        Replies under 400 are returned; with ``stream=True`` still open (the caller closes
        them), otherwise read. Error replies are read (first 64 KiB) and closed, then
        classified. The concurrency slot is held until the headers (or, without streaming,
        the body) have arrived.
        """
        classify = classify or default_classifier
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            epoch = await self._acquire()
            delay: float | None  # None: run the refresh hook, then try again at once
            try:
                request = build()
                try:
                    response = await self._exchange(client, request, stream, auth, follow_redirects)
                except httpx.TransportError as exc:
                    delay = self._retry_network(exc, request, service, attempt, what)
                except httpx.DecodingError as exc:
                    where = f" while {safe_text(what)}" if what else ""
                    raise MalformedResponse(
                        f"{service} sent a reply that could not be decoded{where}: "
                        f"{safe_text(str(exc))}. If a proxy rewrites traffic, check its settings.",
                        service=service,
                    ) from exc
                else:
                    if response.status_code < 400:
                        self._on_success(service, epoch)
                        return response
                    verdict = classify(response)
                    if verdict.action is Action.RETURN:
                        self._on_success(service, epoch)
                        return response
                    if verdict.action is Action.REFRESH and refresh is not None and not refreshed:
                        refreshed = True
                        attempt -= 1  # a refreshed retry is not a failed attempt
                        delay = None
                    else:
                        delay = self._retry_http(
                            response,
                            verdict,
                            service=service,
                            attempt=attempt,
                            epoch=epoch,
                            what=what,
                        )
            finally:
                self._release()
            if delay is None:
                assert refresh is not None
                await refresh()
            elif delay > 0:
                await self._clock.sleep(delay)

    @staticmethod
    async def _exchange(
        client: httpx.AsyncClient,
        request: httpx.Request,
        stream: bool,
        auth: httpx.Auth | None,
        follow_redirects: bool,
    ) -> httpx.Response:
        """One round trip; error replies come back read (bounded) and closed."""
        response = await client.send(
            request,
            stream=True,
            auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            follow_redirects=follow_redirects,
        )
        if response.status_code >= 400:
            return await read_error_reply(response)
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    # -- deciding ------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
        return self._rng.uniform(0.0, ceiling)

    def _retry_network(
        self,
        exc: httpx.TransportError,
        request: httpx.Request,
        service: str,
        attempt: int,
        what: str | None,
    ) -> float:
        host = request.url.host
        where = f" while {safe_text(what)}" if what else ""
        certificate = certificate_error(exc)
        if certificate is not None:
            raise ServiceUnavailable(
                f"{service} ({host}) could not be reached securely{where}: its certificate is "
                f"not trusted ({safe_text(certificate.verify_message or str(certificate))}). "
                "If the vessel's network or a company proxy inspects HTTPS, add its CA "
                "certificate in Settings → Network.",
                service=service,
                title="Secure connection failed",
            ) from exc
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            raise RemoteError(
                f"The request to {service} could not be made{where}: {safe_text(str(exc))}.",
                service=service,
            ) from exc
        reason = describe_transport_error(exc)
        if attempt >= self._max_attempts:
            raise ServiceUnavailable(
                f"Could not reach {service} ({host}) after {attempt} attempts{where}: "
                f"{reason}. Check the vessel's internet link; the copy resumes when it is back.",
                service=service,
            ) from exc
        delay = self._backoff(attempt)
        self._degraded.add(service)
        self._emit(BackingOff(service, attempt + 1, delay, reason))
        return delay

    def _retry_http(
        self,
        response: httpx.Response,
        verdict: Verdict,
        *,
        service: str,
        attempt: int,
        epoch: int,
        what: str | None,
    ) -> float:
        status = response.status_code
        reason = response.reason_phrase
        if verdict.action in (Action.FAIL, Action.REFRESH):
            lead = "refused the sign-in" if verdict.action is Action.REFRESH else None
            raise verdict.error(
                failure_message(service, verdict, status, reason, what=what, lead=lead),
                status=verdict.status or status,
                code=verdict.code,
                service=service,
            )
        label = status_label(verdict.status or status, verdict.code, reason)
        summary = f"{label}: {verdict.detail}" if verdict.detail else label
        if attempt >= self._max_attempts:
            raise ServiceUnavailable(
                failure_message(
                    service,
                    verdict,
                    status,
                    reason,
                    what=what,
                    lead=f"kept failing after {attempt} attempts",
                ),
                status=verdict.status or status,
                code=verdict.code,
                service=service,
            )
        self._degraded.add(service)
        if verdict.action is Action.THROTTLE:
            self._cut_concurrency(epoch)
            pause = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
            if pause is not None:
                self._paused_until = max(self._paused_until, self._clock.monotonic() + pause)
                self._emit(Throttled(service, pause, summary, self._limit))
                return 0.0  # the shared gate does the waiting, for everyone
        delay = self._backoff(attempt)
        self._emit(BackingOff(service, attempt + 1, delay, summary))
        return delay

    def _emit(self, event: PolicyEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    # -- gate and slots ------------------------------------------------------------------------

    def _cut_concurrency(self, epoch: int) -> None:
        if epoch == self._epoch:
            self._limit = max(1, self._limit // 2)
            self._epoch += 1
        self._successes = 0

    def _on_success(self, service: str, epoch: int) -> None:
        if epoch == self._epoch:  # replies to requests sent before the last cut prove nothing
            self._successes += 1
        if self._limit < self._max_concurrency and self._successes >= self._recover_after:
            self._limit += 1
            self._successes = 0
            self._wake()
        if service in self._degraded and epoch == self._epoch and self.paused_for == 0:
            self._degraded.discard(service)
            self._emit(Recovered(service, self._limit))

    async def _acquire(self) -> int:
        """Wait for the gate to open and a slot to be free; returns the concurrency epoch."""
        woken = False
        try:
            while True:
                wait = self._paused_until - self._clock.monotonic()
                if wait > 0:
                    await self._clock.sleep(wait)
                    continue
                if self._in_flight < self._limit and (woken or not self._waiters):
                    self._in_flight += 1
                    return self._epoch
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                if woken:
                    self._waiters.appendleft(future)  # keep its place in the queue
                else:
                    self._waiters.append(future)
                try:
                    await future
                finally:
                    if not future.done() or future.cancelled():
                        self._remove_waiter(future)
                woken = True
        except BaseException:
            self._wake()  # pass on any wake-up this task received but cannot use
            raise

    def _remove_waiter(self, future: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(future)

    def _release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = self._limit - self._in_flight
        while free > 0 and self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                free -= 1
