"""A sync-sized run of Graph calls, a token expiring half-way, logging at DEBUG: afterwards no
file under ``--home`` holds a token, the yacht key or the vault key in plaintext."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from celeste_desktop.auth.graph_auth import GraphAuth
from celeste_desktop.auth.msal_app import http_options_for
from celeste_desktop.auth.vault import MsalCacheStore
from celeste_desktop.cli.auth_cmd import open_session
from celeste_desktop.cli.context import CliContext
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.net.clock import SystemClock
from celeste_desktop.net.http import make_async_client
from celeste_desktop.net.policy import RetryPolicy
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.support.logs import Redactor, configure_logging

CALLS = 200


@pytest.fixture
def context(sim_home: Path) -> Iterator[CliContext]:
    context = CliContext(paths=AppPaths.resolve(sim_home))
    configure_logging(context.paths.log_file, "DEBUG", context.redactor)
    yield context
    configure_logging(None, "WARNING", Redactor())  # takes our handlers off the root logger
    logging.getLogger().setLevel(logging.WARNING)


async def test_no_secret_reaches_any_file(context: CliContext, sim: SimStack) -> None:
    session = open_session(context)
    await session.sign_in_with_device_code(lambda prompt: sim.entra.approve_device_code(prompt.user_code))
    auth = GraphAuth(session)
    policy = RetryPolicy(clock=SystemClock(), max_concurrency=8)
    graph = session.settings.effective_graph_url
    sent_tokens: set[str] = set()

    async def remember_token(request: httpx.Request) -> None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            sent_tokens.add(header.removeprefix("Bearer "))

    async with make_async_client(http_options_for(session.settings)) as client:
        client.event_hooks["request"].append(remember_token)

        async def get(path: str) -> httpx.Response:
            return await policy.send(
                client,
                lambda: client.build_request("GET", f"{graph}{path}"),
                service="graph",
                refresh=auth.force_refresh,
                auth=auth,
            )

        children = (await get("/me/drive/root/children")).json()["value"]
        assert children
        item_ids = itertools.cycle(child["id"] for child in children)
        paths = [f"/me/drive/items/{next(item_ids)}" if n % 4 else "/me/drive/root/children" for n in range(CALLS)]
        first, second = paths[: CALLS // 2], paths[CALLS // 2 :]
        replies = list(await asyncio.gather(*(get(path) for path in first)))
        sim.entra.expire_access_tokens()  # every request in flight from here on gets a 401
        replies += await asyncio.gather(*(get(path) for path in second))
    session.close()

    assert all(reply.status_code == 200 for reply in replies)
    assert sim.entra.grant_counts["refresh_token"] == 1  # all the 401s shared one refresh
    assert len(sent_tokens) == 2

    cache = MsalCacheStore(context.secrets()).load()
    cached = {entry["secret"] for kind in ("AccessToken", "RefreshToken", "IdToken") for entry in cache.search(kind)}
    with sim.entra.state.lock:
        refresh_tokens = set(sim.entra.state.refresh_tokens)
    vault_key = context.paths.key_file.read_bytes().strip()
    secrets = {
        "access token": sent_tokens,
        "refresh token": refresh_tokens,
        "cached token": cached,
        "yacht key": {sim.yacht_key},
        "vault key": {vault_key.decode()},
    }
    assert len(refresh_tokens) == 2 and len(cached) >= 3

    log_text = context.paths.log_file.read_text(encoding="utf-8")
    assert "msal." in log_text and "DEBUG" in log_text  # the run really logged at DEBUG
    scanned = 0
    for path in sorted(p for p in context.paths.home.rglob("*") if p.is_file()):  # type: ignore[union-attr]
        if path == context.paths.key_file:
            continue  # the vault key's own home (vault_backend=file)
        data = path.read_bytes()
        scanned += 1
        for name, values in secrets.items():
            for value in values:
                assert value.encode() not in data, f"{name} in plaintext in {path.relative_to(context.paths.home)}"
    assert scanned >= 3  # settings, vault, log at least
