"""Each fault kind of the shared fault plan, over real loopback sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from celeste_desktop.sim.faults import FaultPlan, LinkShaper, parse_size, parse_spec
from celeste_desktop.sim.http import Request, Response, Router, SimLoop, SimServer

BODY = bytes(range(256)) * 1024  # 256 KiB


def make_router() -> Router:
    router = Router()

    async def items(request: Request) -> Response:
        return Response.json({"value": [{"id": "1"}], "name": request.route_params["name"]})

    async def blob(request: Request) -> Response:
        return Response(body=BODY, headers={"content-type": "application/octet-stream"})

    async def upload(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return Response.json({"size": size})

    router.add("GET", "/items/{name}", items)
    router.add("GET", "/blob", blob)
    router.add("PUT", "/upload", upload)
    return router


@pytest.fixture
def served() -> Iterator[tuple[SimServer, FaultPlan]]:
    plan = FaultPlan(seed=3)
    server = SimServer("graph", make_router(), faults=plan)
    loop = SimLoop()
    loop.start_servers([server])
    yield server, plan
    loop.stop_servers([server])
    loop.close()


def test_429_and_503_carry_retry_after_then_recover(served: tuple[SimServer, FaultPlan]) -> None:
    server, plan = served
    plan.script("graph", "429", retry_after=7)
    plan.script("graph", "503", retry_after=2)
    with httpx.Client(base_url=server.base_url) as client:
        first = client.get("/items/a")
        second = client.get("/items/a")
        third = client.get("/items/a")
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert first.json()["error"]["code"] == "activityLimitReached"
    assert (second.status_code, second.headers["retry-after"]) == (503, "2")
    assert third.status_code == 200


def test_5xx_burst_hits_exactly_the_scripted_count(served: tuple[SimServer, FaultPlan]) -> None:
    server, plan = served
    plan.script("*", "500", times=3, path="^/items/")
    with httpx.Client(base_url=server.base_url) as client:
        statuses = [client.get("/items/x").status_code for _ in range(5)]
    assert statuses == [500, 500, 500, 200, 200]


def test_reset_after_n_bytes_cuts_the_body(served: tuple[SimServer, FaultPlan]) -> None:
    server, plan = served
    plan.script("graph", "reset", reset_after=10_000, path="^/blob$")
    received = bytearray()
    with httpx.Client(base_url=server.base_url) as client:
        with pytest.raises(httpx.TransportError), client.stream("GET", "/blob") as response:
            for chunk in response.iter_raw():
                received += chunk
        assert client.get("/blob").content == BODY  # the next request is served normally
    assert len(received) < 10_000


def test_malformed_json(served: tuple[SimServer, FaultPlan]) -> None:
    server, plan = served
    plan.script("graph", "malformed")
    with httpx.Client(base_url=server.base_url) as client:
        response = client.get("/items/a")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_delay_stalls_one_request(served: tuple[SimServer, FaultPlan]) -> None:
    server, plan = served
    plan.script("graph", "delay", seconds=0.3)
    with httpx.Client(base_url=server.base_url) as client:
        started = time.monotonic()
        client.get("/items/a")
        slow = time.monotonic() - started
        started = time.monotonic()
        client.get("/items/a")
        fast = time.monotonic() - started
    assert slow >= 0.3 > fast


def test_link_shaper_limits_rate_and_adds_round_trips(served: tuple[SimServer, FaultPlan]) -> None:
    server, plan = served
    plan.link = LinkShaper(rate_bytes_per_s=1_000_000, rtt_s=0.05)
    with httpx.Client(base_url=server.base_url) as client:
        started = time.monotonic()
        body = client.get("/blob").content
        elapsed = time.monotonic() - started
        started = time.monotonic()
        client.put("/upload", content=BODY)
        up = time.monotonic() - started
    assert body == BODY
    # 256 KiB at 1 MB/s is 0.26 s, plus a connection and a request round trip.
    assert 0.3 <= elapsed < 1.5
    assert 0.3 <= up < 1.5


def test_random_resets_by_volume(served: tuple[SimServer, FaultPlan]) -> None:
    server, plan = served
    plan.reset_every_bytes = 300_000
    failures = 0
    with httpx.Client(base_url=server.base_url) as client:
        for _ in range(20):
            try:
                client.get("/blob").raise_for_status()
            except httpx.TransportError:
                failures += 1
    # ~5 MB served with one reset per ~300 kB on average.
    assert 5 <= failures <= 20
    assert ("*", "reset") in plan.injected


def test_random_faults_are_seeded_and_reproducible() -> None:
    def draws(seed: int) -> list[str | None]:
        plan = parse_spec(f"seed={seed};graph:429=0.3/1;*:500=0.2")
        picks = [plan.pick("graph", "GET", "/x") for _ in range(50)]
        return [fault.kind if fault else None for fault in picks]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)
    assert {"429", "500", None} == set(draws(5))


def test_spec_parsing() -> None:
    plan = parse_spec("seed=1;link=2mbit/600ms;reset_every=50MB;token_lifetime=120;storage:503=0.02/1")
    assert plan.link is not None and plan.link.rate == 250_000 and plan.link.rtt == 0.6
    assert plan.reset_every_bytes == 50_000_000
    assert plan.token_lifetime == 120
    assert parse_size("1MiB") == 1_048_576
    with pytest.raises(ValueError, match="needs '='"):
        parse_spec("graph:429")
    with pytest.raises(ValueError, match="probability"):
        parse_spec("graph:429=2")
