"""RetryPolicy against a scripted fake service on virtual time."""

from __future__ import annotations

import asyncio
import gzip
import random
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from celeste_desktop.domain.errors import (
    AccessDenied,
    MalformedResponse,
    NotFound,
    QuotaExceeded,
    RemoteError,
    ServiceUnavailable,
)
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.policy import (
    Action,
    BackingOff,
    Recovered,
    RetryPolicy,
    Throttled,
    Verdict,
    default_classifier,
    parse_error_body,
    parse_retry_after,
    safe_text,
    safe_url,
    supabase_storage_classifier,
)

if TYPE_CHECKING:
    from conftest import Events, FakeService

URL = "https://graph.example.test/v1.0/me/drive/root/children"


def get(url: str = URL) -> httpx.Request:
    return httpx.Request("GET", url)


def throttle(status: int = 429, retry_after: str | None = "5") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"code": "throttledRequest", "message": "Too many requests"}}
    return httpx.Response(status, headers=headers, json=body)


def graph_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


@pytest.fixture
def policy(clock: FakeClock, events: Events, max_random: random.Random) -> RetryPolicy:
    return RetryPolicy(clock=clock, max_concurrency=4, recover_after=2, rng=max_random, on_event=events)


# -- success and Retry-After -------------------------------------------------------------------


async def test_success_is_returned_read(policy: RetryPolicy, service: FakeService) -> None:
    async with service.client() as client:
        response = await policy.send(client, get, service="Microsoft Graph")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert policy.in_flight == 0


async def test_retry_after_is_honoured_exactly(
    policy: RetryPolicy, service: FakeService, clock: FakeClock, events: Events
) -> None:
    service.script = [throttle(429, "5"), throttle(503, "3"), httpx.Response(200)]
    async with service.client() as client:
        response = await policy.send(client, get, service="Microsoft Graph")
    assert response.status_code == 200
    assert service.arrivals == [1000.0, 1005.0, 1008.0]
    assert clock.elapsed == 8.0
    throttled = events.of(Throttled)
    assert [e.seconds for e in throttled] == [5.0, 3.0]  # type: ignore[attr-defined]
    assert "429 throttledRequest: Too many requests" in throttled[0].reason  # type: ignore[attr-defined]
    assert isinstance(events.items[-1], Recovered)


async def test_retry_after_http_date(policy: RetryPolicy, service: FakeService, clock: FakeClock) -> None:
    when = format_datetime(clock.now() + timedelta(seconds=30), usegmt=True)
    service.script = [throttle(429, when), httpx.Response(200)]
    async with service.client() as client:
        await policy.send(client, get, service="Microsoft Graph")
    assert clock.elapsed == 30.0


def test_parse_retry_after_forms(clock: FakeClock) -> None:
    now = clock.now()
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("-4", now) == 0.0
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0.0
    assert parse_retry_after("Wed, 01 Jan 2024 00:00:10 GMT", now) == 10.0
    assert parse_retry_after("999999999", now) == 3600.0
    for garbage in (None, "", "soon", "nan", "Mon, 99 Foo 2024"):
        assert parse_retry_after(garbage, now) is None


async def test_no_request_is_sent_during_the_pause(
    clock: FakeClock, service: FakeService, max_random: random.Random
) -> None:
    """Four in flight, eight queued; one 429 with Retry-After pauses every one of them."""
    timeline: list[tuple[float, str]] = []
    policy = RetryPolicy(
        clock=clock,
        max_concurrency=4,
        recover_after=2,
        rng=max_random,
        on_event=lambda e: timeline.append((clock.monotonic(), type(e).__name__)),
    )
    service.latency = 1.0
    service.script = [throttle(429, "10")]
    async with service.client() as client:
        results = await asyncio.gather(*(policy.send(client, get, service="Microsoft Graph") for _ in range(12)))
    assert all(r.status_code == 200 for r in results)
    # The 429 answered at t=1 (virtual 1001): nothing may arrive until t=11.
    assert not [t for t in service.arrivals if 1001.0 < t < 1011.0]
    after = [t for t in service.arrivals if t >= 1011.0]
    assert len(after) == 9  # the throttled one again plus the eight that were queued
    # ...and they came back at the halved concurrency, which then grows again.
    assert after.count(1011.0) == 2
    assert policy.concurrency == 4
    # Replies to requests sent before the 429 do not announce a recovery during the pause.
    assert timeline == [(1001.0, "Throttled"), (1012.0, "Recovered")]


async def test_concurrency_drops_then_recovers(policy: RetryPolicy, service: FakeService, events: Events) -> None:
    service.script = [throttle(429, "1")]
    async with service.client() as client:
        await policy.send(client, get, service="Microsoft Graph")
        assert policy.concurrency == 2
        seen = []
        for _ in range(6):
            await policy.send(client, get, service="Microsoft Graph")
            seen.append(policy.concurrency)
    # recover_after=2: the retried request was the first success, then +1 every two.
    assert seen == [3, 3, 4, 4, 4, 4]
    assert events.of(Recovered)[0].concurrency == 2  # type: ignore[attr-defined]


async def test_reduced_concurrency_limits_requests_in_flight(policy: RetryPolicy, service: FakeService) -> None:
    service.script = [throttle(429, "1")]
    async with service.client() as client:
        await policy.send(client, get, service="Microsoft Graph")
        service.latency = 1.0
        service.peak = 0
        await asyncio.gather(*(policy.send(client, get, service="G") for _ in range(3)))
    assert service.peak == 2


async def test_one_burst_of_429s_halves_concurrency_once(policy: RetryPolicy, service: FakeService) -> None:
    service.latency = 1.0
    service.script = [throttle(429, "2") for _ in range(4)]
    async with service.client() as client:
        await asyncio.gather(*(policy.send(client, get, service="G") for _ in range(4)))
    assert policy.concurrency >= 2  # 4 -> 2 once, not 4 -> 2 -> 1 -> 1


async def test_429_without_retry_after_backs_off(
    policy: RetryPolicy, service: FakeService, clock: FakeClock, events: Events
) -> None:
    service.script = [throttle(429, None), throttle(429, None), httpx.Response(200)]
    async with service.client() as client:
        await policy.send(client, get, service="G")
    assert [e.delay for e in events.of(BackingOff)] == [1.0, 2.0]  # type: ignore[attr-defined]
    assert clock.elapsed == 3.0
    assert policy.concurrency == 1  # halved twice: the second 429 came after the first cut
    assert not events.of(Throttled)


# -- backoff -----------------------------------------------------------------------------------


async def test_backoff_grows_and_is_capped(
    clock: FakeClock, service: FakeService, events: Events, max_random: random.Random
) -> None:
    policy = RetryPolicy(clock=clock, max_attempts=10, rng=max_random, on_event=events)
    service.default = lambda: graph_error(500, "generalException", "Oops")
    async with service.client() as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await policy.send(client, get, service="Microsoft Graph", what="listing Yacht Docs")
    delays = [e.delay for e in events.of(BackingOff)]  # type: ignore[attr-defined]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert clock.elapsed == sum(delays)
    assert len(service.requests) == 10
    error = caught.value
    assert (error.status, error.code, error.service) == (500, "generalException", "Microsoft Graph")
    assert "kept failing after 10 attempts" in error.message
    assert "while listing Yacht Docs" in error.message


async def test_full_jitter_stays_within_the_cap(clock: FakeClock, service: FakeService, events: Events) -> None:
    policy = RetryPolicy(
        clock=clock,
        max_attempts=12,
        base_delay=0.5,
        max_delay=10,
        rng=random.Random(7),
        on_event=events,
    )
    service.default = lambda: httpx.Response(502)
    async with service.client() as client:
        with pytest.raises(ServiceUnavailable):
            await policy.send(client, get, service="G")
    delays = [e.delay for e in events.of(BackingOff)]  # type: ignore[attr-defined]
    assert len(delays) == 11
    for attempt, delay in enumerate(delays, start=1):
        assert 0 <= delay <= min(10, 0.5 * 2 ** (attempt - 1))
    assert len(set(delays)) == len(delays)  # jittered, not fixed


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadError("connection reset by peer"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
async def test_network_errors_are_retried(
    policy: RetryPolicy, service: FakeService, events: Events, failure: Exception
) -> None:
    service.script = [failure, failure, httpx.Response(200)]
    async with service.client() as client:
        response = await policy.send(client, get, service="G")
    assert response.status_code == 200
    assert len(events.of(BackingOff)) == 2
    assert isinstance(events.items[-1], Recovered)


async def test_network_errors_exhaust_into_service_unavailable(
    clock: FakeClock, service: FakeService, max_random: random.Random
) -> None:
    policy = RetryPolicy(clock=clock, max_attempts=3, rng=max_random)
    service.default = lambda: httpx.ConnectTimeout("timed out")
    async with service.client() as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await policy.send(client, get, service="Supabase Storage")
    assert len(service.requests) == 3
    assert caught.value.message.startswith(
        "Could not reach Supabase Storage (graph.example.test) after 3 attempts: the connection timed out"
    )


async def test_untrusted_certificate_fails_at_once(policy: RetryPolicy, service: FakeService) -> None:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate in certificate chain"
    failure = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]")
    failure.__cause__ = cause
    service.default = lambda: failure
    async with service.client() as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await policy.send(client, get, service="Microsoft Graph")
    assert len(service.requests) == 1
    assert "self-signed certificate in certificate chain" in caught.value.message
    assert "CA certificate" in caught.value.message


# -- 401 and refresh ---------------------------------------------------------------------------


async def test_401_refreshes_once_then_retries(policy: RetryPolicy, service: FakeService) -> None:
    token = ["old"]
    refreshes = 0

    async def refresh() -> None:
        nonlocal refreshes
        refreshes += 1
        token[0] = "new"

    def build() -> httpx.Request:
        return httpx.Request("GET", URL, headers={"Authorization": f"Bearer {token[0]}"})

    service.script = [graph_error(401, "InvalidAuthenticationToken", "Access token has expired")]
    async with service.client() as client:
        response = await policy.send(client, build, service="G", refresh=refresh)
    assert response.status_code == 200
    assert refreshes == 1
    assert [r.headers["Authorization"] for r in service.requests] == ["Bearer old", "Bearer new"]


async def test_second_401_raises_access_denied(policy: RetryPolicy, service: FakeService) -> None:
    refreshes = 0

    async def refresh() -> None:
        nonlocal refreshes
        refreshes += 1

    service.default = lambda: graph_error(401, "InvalidAuthenticationToken", "Token expired")
    async with service.client() as client:
        with pytest.raises(AccessDenied) as caught:
            await policy.send(client, get, service="Microsoft Graph", refresh=refresh)
    assert refreshes == 1
    assert len(service.requests) == 2
    assert caught.value.status == 401
    assert "Sign in again" in caught.value.message


async def test_401_without_refresh_hook_fails_at_once(policy: RetryPolicy, service: FakeService) -> None:
    service.default = lambda: httpx.Response(401, json={"message": "Invalid API key"})
    async with service.client() as client:
        with pytest.raises(AccessDenied, match="Invalid API key"):
            await policy.send(client, get, service="Supabase")
    assert len(service.requests) == 1


# -- failures that are final -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, "accessDenied", AccessDenied),
        (404, "itemNotFound", NotFound),
        (507, "quotaLimitReached", QuotaExceeded),
        (413, "requestTooLarge", QuotaExceeded),
        (409, "nameAlreadyExists", RemoteError),
        (400, "invalidRequest", RemoteError),
        (501, "notSupported", RemoteError),
    ],
)
async def test_final_failures_raise_at_once(
    policy: RetryPolicy,
    service: FakeService,
    clock: FakeClock,
    status: int,
    code: str,
    error: type[RemoteError],
) -> None:
    service.default = lambda: graph_error(status, code, "The service says no.")
    async with service.client() as client:
        with pytest.raises(RemoteError) as caught:
            await policy.send(client, get, service="Microsoft Graph")
    assert type(caught.value) is error
    assert (caught.value.status, caught.value.code) == (status, code)
    assert len(service.requests) == 1
    assert clock.elapsed == 0


async def test_403_message_is_actionable(policy: RetryPolicy, service: FakeService) -> None:
    service.default = lambda: graph_error(
        403, "accessDenied", "The caller does not have permission to perform the action."
    )
    async with service.client() as client:
        with pytest.raises(AccessDenied) as caught:
            await policy.send(client, get, service="Microsoft Graph", what="listing 02_ENGINEERING")
    assert caught.value.message == (
        "Microsoft Graph refused access (403 accessDenied) while listing 02_ENGINEERING: "
        "The caller does not have permission to perform the action. The signed-in account or "
        "key has no permission for this. Ask the owner to share it, or sign in with an account "
        "that has access."
    )
    assert caught.value.title == "Access denied"


async def test_messages_never_carry_query_strings_or_headers(policy: RetryPolicy, service: FakeService) -> None:
    secret_url = "https://tenant.sharepoint.test/_layouts/download.aspx?tempauth=SECRET123"
    service.default = lambda: httpx.Response(
        404, json={"error": {"code": "itemNotFound", "message": f"Nothing at {secret_url}"}}
    )

    def build() -> httpx.Request:
        return httpx.Request("GET", secret_url, headers={"Authorization": "Bearer TOKEN456"})

    async with service.client() as client:
        with pytest.raises(NotFound) as caught:
            await policy.send(client, build, service="SharePoint", what=f"downloading {secret_url}")
    text = str(caught.value)
    assert "SECRET123" not in text and "TOKEN456" not in text
    assert "https://tenant.sharepoint.test/_layouts/download.aspx" in text


def test_safe_helpers() -> None:
    assert safe_url("https://u:p@h.test/a/b?sig=x#frag") == "https://h.test/a/b"
    assert safe_text("see https://h.test/x?token=abc and Bearer abc.def") == ("see https://h.test/x and Bearer [token]")
    assert "[token]" in safe_text("jwt eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl here")
    assert safe_text("x" * 1000, 50).endswith("…")


# -- error bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(400, content=b"{not json"),
        httpx.Response(400, content=b"[1, 2, 3]"),
        httpx.Response(400, content=b'{"error": 5, "message": ["a"]}'),
        httpx.Response(400, content=b'{"error": {"code": {"x": 1}, "message": null}}'),
        httpx.Response(400, content=b"\xff\xfe\x00garbage"),
        httpx.Response(400, content=b"<html><body>Bad Request</body></html>"),
        httpx.Response(400, content=b"x" * 200_000),
        httpx.Response(400, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}),
        httpx.Response(400),
    ],
)
async def test_malformed_error_bodies_fall_back_to_the_status_line(
    policy: RetryPolicy, service: FakeService, reply: httpx.Response
) -> None:
    service.default = lambda: reply
    async with service.client() as client:
        with pytest.raises(RemoteError) as caught:
            await policy.send(client, get, service="PostgREST")
    assert type(caught.value) is RemoteError
    assert caught.value.status == 400
    assert caught.value.message.startswith("PostgREST refused the request (400 Bad Request): Bad Request.")


async def test_gzip_error_body_is_decoded(policy: RetryPolicy, service: FakeService) -> None:
    body = gzip.compress(b'{"error": {"code": "accessDenied", "message": "Nope"}}')
    service.default = lambda: httpx.Response(403, content=body, headers={"Content-Encoding": "gzip"})
    async with service.client() as client:
        with pytest.raises(AccessDenied, match=r"\(403 accessDenied\): Nope\."):
            await policy.send(client, get, service="G")


def test_error_bodies_of_each_service_are_understood() -> None:
    def body(payload: object) -> httpx.Response:
        return httpx.Response(400, json=payload)

    graph = parse_error_body(body({"error": {"code": "itemNotFound", "message": "Gone"}}))
    assert (graph.code, graph.message, graph.status) == ("itemNotFound", "Gone", None)
    storage = parse_error_body(
        body({"statusCode": "409", "error": "Duplicate", "message": "The resource already exists"})
    )
    assert (storage.code, storage.message, storage.status) == ("Duplicate", "The resource already exists", 409)
    postgrest = parse_error_body(
        body(
            {
                "code": "23505",
                "message": "duplicate key value violates unique constraint",
                "details": "Key (object_id)=(x) already exists.",
                "hint": None,
            }
        )
    )
    assert postgrest.code == "23505"
    assert postgrest.message == ("duplicate key value violates unique constraint (Key (object_id)=(x) already exists.)")
    oauth = parse_error_body(body({"error": "invalid_grant", "error_description": "Expired"}))
    assert (oauth.code, oauth.message) == ("invalid_grant", "Expired")


@pytest.mark.parametrize(
    ("payload", "error", "status", "code"),
    [
        ({"statusCode": "409", "error": "Duplicate", "message": "exists"}, RemoteError, 409, "Duplicate"),
        ({"statusCode": "404", "error": "not_found", "message": "Object not found"}, NotFound, 404, "not_found"),
        (
            {"statusCode": "413", "error": "Payload too large", "message": "too big"},
            QuotaExceeded,
            413,
            "Payload too large",
        ),
        (
            {"statusCode": "403", "error": "Unauthorized", "message": "new row violates row-level security policy"},
            AccessDenied,
            403,
            "Unauthorized",
        ),
        ({"statusCode": "abc", "error": "InvalidKey", "message": "Invalid key"}, RemoteError, 400, "InvalidKey"),
    ],
)
async def test_storage_classifier_reads_the_status_in_the_body(
    policy: RetryPolicy,
    service: FakeService,
    payload: dict[str, str],
    error: type[RemoteError],
    status: int,
    code: str,
) -> None:
    service.default = lambda: httpx.Response(400, json=payload)
    async with service.client() as client:
        with pytest.raises(RemoteError) as caught:
            await policy.send(client, get, service="Supabase Storage", classify=supabase_storage_classifier)
    assert type(caught.value) is error
    assert (caught.value.status, caught.value.code) == (status, code)
    assert payload["message"] in caught.value.message


async def test_storage_classifier_retries_a_500_in_the_body(policy: RetryPolicy, service: FakeService) -> None:
    service.script = [httpx.Response(400, json={"statusCode": "500", "error": "internal"})]
    async with service.client() as client:
        response = await policy.send(client, get, service="Supabase Storage", classify=supabase_storage_classifier)
    assert response.status_code == 200


async def test_a_classifier_can_hand_the_reply_back(policy: RetryPolicy, service: FakeService) -> None:
    def graph_delta(response: httpx.Response) -> Verdict:
        if response.status_code == 410:
            return Verdict(Action.RETURN)
        return default_classifier(response)

    service.default = lambda: httpx.Response(
        410,
        headers={"Location": "https://graph.example.test/delta?token=fresh"},
        json={"error": {"code": "resyncChangesApplyDifferences", "message": "Resync"}},
    )
    async with service.client() as client:
        response = await policy.send(client, get, service="G", classify=graph_delta, stream=True)
    assert response.status_code == 410
    assert response.headers["Location"].endswith("token=fresh")
    assert response.json()["error"]["code"] == "resyncChangesApplyDifferences"


# -- streaming ---------------------------------------------------------------------------------


class TrackedStream(httpx.AsyncByteStream):
    def __init__(self, size: int, chunk: int = 8192) -> None:
        self.size, self.chunk = size, chunk
        self.produced = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.produced < self.size:
            self.produced += self.chunk
            yield b"e" * self.chunk

    async def aclose(self) -> None:
        self.closed = True


async def test_stream_success_stays_open_for_the_caller(policy: RetryPolicy, service: FakeService) -> None:
    body = TrackedStream(1 << 20)
    service.default = lambda: httpx.Response(200, stream=body)
    async with service.client() as client:
        response = await policy.send(client, get, service="G", stream=True)
        assert body.produced == 0 and not body.closed
        total = sum([len(c) async for c in response.aiter_bytes()])
        await response.aclose()
    assert total == 1 << 20
    assert body.closed


async def test_error_bodies_are_read_bounded_and_closed(policy: RetryPolicy, service: FakeService) -> None:
    body = TrackedStream(100 << 20)
    service.default = lambda: httpx.Response(404, stream=body)
    async with service.client() as client:
        with pytest.raises(NotFound):
            await policy.send(client, get, service="G", stream=True)
    assert body.produced <= 64 * 1024 + 8192
    assert body.closed


async def test_streaming_upload_is_rebuilt_for_each_attempt(policy: RetryPolicy, service: FakeService) -> None:
    builds = 0

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 1000

    def build() -> httpx.Request:
        nonlocal builds
        builds += 1
        return httpx.Request("PUT", URL, content=chunks())

    service.script = [httpx.Response(503), httpx.ReadError("reset")]
    async with service.client() as client:
        await policy.send(client, build, service="Supabase Storage")
    assert builds == 3
    assert [len(r.content) for r in service.requests] == [4000, 4000, 4000]


async def test_undecodable_success_body_is_malformed_response(policy: RetryPolicy, service: FakeService) -> None:
    service.default = lambda: httpx.Response(
        200, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}
    )
    async with service.client() as client:
        with pytest.raises(MalformedResponse):
            await policy.send(client, get, service="G")


# -- cancellation ------------------------------------------------------------------------------


async def test_cancelled_requests_give_their_slots_back(clock: FakeClock, service: FakeService) -> None:
    policy = RetryPolicy(clock=clock, max_concurrency=1)
    service.latency = 10.0
    async with service.client() as client:
        holder = asyncio.create_task(policy.send(client, get, service="G"))
        queued = [asyncio.create_task(policy.send(client, get, service="G")) for _ in range(3)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        holder.cancel()
        queued[0].cancel()
        results = await asyncio.gather(holder, *queued, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[1], asyncio.CancelledError)
    assert [r.status_code for r in results[2:]] == [200, 200]  # type: ignore[union-attr]
    assert policy.in_flight == 0
    assert service.peak == 1
