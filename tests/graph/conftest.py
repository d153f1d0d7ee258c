"""The `graph` fixture: the Graph client wired to the simulated stack over real loopback sockets,
with virtual-time waits (a `FakeClock` drives the retry policy)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from graph_helpers import GraphHarness, SentRequest, StaticTokenAuth, mint

from celeste_desktop.graph.client import GraphClient
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.http import HttpOptions, make_async_client
from celeste_desktop.net.policy import PolicyEvent, RetryPolicy
from celeste_desktop.sim.stack import SimStack


@pytest.fixture
async def graph(sim: SimStack) -> AsyncIterator[GraphHarness]:
    clock = FakeClock()
    events: list[PolicyEvent] = []
    policy = RetryPolicy(clock=clock, on_event=events.append)
    http = make_async_client(HttpOptions(ca_bundle=sim.tls.ca_bundle, use_system_trust=False))
    auth = StaticTokenAuth(lambda: mint(sim))
    client = GraphClient(http=http, policy=policy, base_url=sim.settings_json()["graph_url"], auth=auth,
                         refresh=auth.refresh)
    harness = GraphHarness(sim, clock, policy, http, auth, client, events)

    async def record(request: httpx.Request) -> None:
        harness.sent.append(SentRequest(clock.monotonic(), request.method, request.url, request.headers.copy()))

    http.event_hooks = {"request": [record], "response": []}
    try:
        yield harness
    finally:
        await http.aclose()

