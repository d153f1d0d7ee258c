"""Fixtures for the Supabase destination tests: the app's own HTTP client and retry policy aimed at
the simulated project of the ``sim`` stack, a virtual clock, a log of every request sent, and a
small digest service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from destination_fakes import Dest
from digest_service import DIGEST_SALT, DIGEST_YACHT, DigestService

from celeste_desktop.net.clock import FakeClock
from celeste_desktop.sim.http import SimLoop, SimServer
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.storage.target import SupabaseTarget


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def dest(sim: SimStack, clock: FakeClock) -> AsyncIterator[Dest]:
    settings = sim.settings_json()
    target = SupabaseTarget.create(
        url=settings["supabase_url"],
        anon_key=settings["supabase_anon_key"],
        key=settings["supabase_key"],
        yacht_id=settings["yacht_id"],
    )
    state = Dest(sim, clock, target)
    try:
        yield state
    finally:
        for client in state.clients:
            await client.aclose()



@pytest.fixture
def digest() -> Iterator[tuple[DigestService, str]]:
    """The digest stand-in on loopback (plain HTTP) and its base URL."""
    service = DigestService(salts={DIGEST_YACHT: DIGEST_SALT})
    server = SimServer("digest", service.router())
    loop = SimLoop()
    try:
        loop.start_servers([server])
        yield service, server.base_url
    finally:
        loop.stop_servers([server])
        loop.close()
