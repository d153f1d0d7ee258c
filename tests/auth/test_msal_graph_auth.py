"""GraphAuth: a fresh token on every Graph request, one refresh for many callers, 401 → refresh
once → retry once through the RetryPolicy, and sign-in failures that reach the sync as domain errors."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from celeste_desktop.auth.errors import AdminConsentRequired
from celeste_desktop.auth.graph_auth import GraphAuth
from celeste_desktop.auth.msal_app import http_options_for
from celeste_desktop.auth.session import AccessToken, MsalSession
from celeste_desktop.cli.auth_cmd import open_session
from celeste_desktop.cli.context import CliContext
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings
from celeste_desktop.domain.errors import AccessDenied, ConsentRequired, SignInRequired
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.http import make_async_client
from celeste_desktop.net.policy import BackingOff, PolicyEvent, RetryPolicy
from celeste_desktop.sim.stack import SimStack

# -- against the simulators ----------------------------------------------------------------------


@pytest.fixture
def session(sim_home: Path) -> Iterator[MsalSession]:
    session = open_session(CliContext(paths=AppPaths.resolve(sim_home)))
    yield session
    session.close()


@pytest.fixture
async def signed_in(session: MsalSession, sim: SimStack) -> MsalSession:
    await session.sign_in_with_device_code(lambda prompt: sim.entra.approve_device_code(prompt.user_code))
    return session


@pytest.fixture
async def client(session: MsalSession) -> AsyncIterator[httpx.AsyncClient]:
    async with make_async_client(http_options_for(session.settings)) as client:
        yield client


class Graph:
    """Graph calls the way the sync makes them: built afresh per attempt, through the policy."""

    def __init__(self, client: httpx.AsyncClient, auth: GraphAuth, settings: Settings) -> None:
        self.events: list[PolicyEvent] = []
        self.policy = RetryPolicy(clock=FakeClock(), max_attempts=4, on_event=self.events.append)
        self.client, self.auth, self.base = client, auth, settings.effective_graph_url

    async def get(self, path: str) -> httpx.Response:
        return await self.policy.send(
            self.client,
            lambda: self.client.build_request("GET", f"{self.base}{path}"),
            service="graph",
            refresh=self.auth.force_refresh,
            auth=self.auth,
        )


def issued(sim: SimStack, grant: str = "refresh_token") -> int:
    return sim.entra.grant_counts[grant]


async def test_token_is_kept_until_it_nears_expiry(signed_in: MsalSession, sim: SimStack) -> None:
    auth = GraphAuth(signed_in)

    first = await auth.access_token()
    again = await auth.access_token()

    assert first == again and auth.refreshes == 1  # one trip to MSAL, served from its cache
    assert issued(sim) == 0


async def test_short_lived_token_is_refreshed_with_the_refresh_token(session: MsalSession, sim: SimStack) -> None:
    sim.faults.token_lifetime = 60  # under MSAL's five-minute margin: due for refresh at once
    await session.sign_in_with_device_code(lambda prompt: sim.entra.approve_device_code(prompt.user_code))
    [signed_in_token] = [t["secret"] for t in session._cache.search("AccessToken")]
    auth = GraphAuth(session)

    token = await auth.access_token()

    assert token != signed_in_token and issued(sim) == 1
    assert sim.entra.tokens.verify(token)["exp"] - time.time() <= 60


async def test_expired_token_is_refreshed_once_for_every_refused_request(
    signed_in: MsalSession, client: httpx.AsyncClient, sim: SimStack
) -> None:
    graph = Graph(client, GraphAuth(signed_in), signed_in.settings)
    assert (await graph.get("/me")).status_code == 200

    sim.entra.expire_access_tokens()  # Graph now refuses the token MSAL still thinks is good
    replies = await asyncio.gather(*(graph.get("/me/drive/root/children") for _ in range(16)))

    assert all(reply.status_code == 200 for reply in replies)
    assert issued(sim) == 1  # sixteen 401s, one refresh
    assert graph.auth.refreshes == 2


async def test_revoked_sign_in_asks_to_sign_in_again(
    signed_in: MsalSession, client: httpx.AsyncClient, sim: SimStack
) -> None:
    graph = Graph(client, GraphAuth(signed_in), signed_in.settings)
    await graph.get("/me")
    sim.entra.revoke_refresh_tokens()
    sim.entra.expire_access_tokens()

    with pytest.raises(SignInRequired) as caught:
        await graph.get("/me/drive")

    assert "Sign in again" in caught.value.message and "AADSTS700082" in caught.value.message
    assert caught.value.title == "Sign in again"


async def test_consent_withdrawn_needs_an_administrator(
    signed_in: MsalSession, client: httpx.AsyncClient, sim: SimStack
) -> None:
    graph = Graph(client, GraphAuth(signed_in), signed_in.settings)
    await graph.get("/me")
    sim.entra.require_consent("admin")
    sim.entra.expire_access_tokens()

    with pytest.raises(ConsentRequired) as caught:
        await graph.get("/me/drive")

    assert isinstance(caught.value, AdminConsentRequired)
    # The tenant of the signed-in account, not the "organizations" placeholder.
    assert f"/{sim.entra.tenant_id}/adminconsent?client_id={signed_in.settings.client_id}" in caught.value.message


async def test_still_refused_after_a_refresh_is_access_denied(
    signed_in: MsalSession, client: httpx.AsyncClient, sim: SimStack
) -> None:
    graph = Graph(client, GraphAuth(signed_in), signed_in.settings)
    sim.graph.audiences = frozenset({"https://someone-else.example"})  # every token is refused

    with pytest.raises(AccessDenied):
        await graph.get("/me")

    assert issued(sim) == 1  # refreshed once, retried once, then gave up


async def test_unreachable_sign_in_is_retried_by_the_policy(
    signed_in: MsalSession, client: httpx.AsyncClient, sim: SimStack
) -> None:
    graph = Graph(client, GraphAuth(signed_in), signed_in.settings)
    await graph.get("/me")
    sim.entra.expire_access_tokens()
    # The refresh after the 401 fails, and so does the one made for the retried request.
    sim.faults.script("entra", "reset", times=2, reset_after=0, path=r"/oauth2/v2\.0/token")

    reply = await graph.get("/me")

    assert reply.status_code == 200
    [backoff] = [event for event in graph.events if isinstance(event, BackingOff)]
    assert "could not connect" in backoff.reason and "Microsoft sign-in" in backoff.reason


async def test_sign_out_ends_the_token(signed_in: MsalSession) -> None:
    auth = GraphAuth(signed_in)
    await auth.access_token()

    await asyncio.to_thread(signed_in.sign_out)

    with pytest.raises(SignInRequired):
        await auth.access_token()
    assert signed_in.current_account() is None


async def test_nobody_signed_in(session: MsalSession) -> None:
    with pytest.raises(SignInRequired, match="celeste-desktop login"):
        await GraphAuth(session).access_token()


# -- the single flight, with a fake session --------------------------------------------------------


class FakeSession:
    """An MsalSession stand-in whose token fetch waits at a gate the test opens."""

    def __init__(self) -> None:
        self.settings = Settings(graph_url="https://graph.example/v1.0")
        self.epoch = 0
        self.calls: list[bool] = []
        self.gate = threading.Event()
        self.gate.set()
        self.lifetime = 3600.0

    def acquire_silent(self, *, force_refresh: bool = False) -> AccessToken:
        self.calls.append(force_refresh)
        assert self.gate.wait(5)
        return AccessToken(f"token-{len(self.calls)}", time.time() + self.lifetime)


async def until(condition: object) -> None:
    for _ in range(500):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("condition not reached")


async def test_concurrent_callers_share_one_fetch() -> None:
    fake = FakeSession()
    fake.gate.clear()
    auth = GraphAuth(fake)  # type: ignore[arg-type]
    waiting = [asyncio.create_task(auth.access_token()) for _ in range(10)]
    await until(lambda: fake.calls)

    fake.gate.set()
    tokens = await asyncio.gather(*waiting)

    assert set(tokens) == {"token-1"} and fake.calls == [False]


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    fake = FakeSession()
    fake.gate.clear()
    auth = GraphAuth(fake)  # type: ignore[arg-type]
    first, second = asyncio.create_task(auth.access_token()), asyncio.create_task(auth.access_token())
    await until(lambda: fake.calls)

    first.cancel()
    fake.gate.set()

    assert await second == "token-1"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_late_401_for_an_old_token_does_not_refresh_again() -> None:
    fake = FakeSession()
    auth = GraphAuth(fake)  # type: ignore[arg-type]
    replies = {"/v1.0/early": asyncio.Event(), "/v1.0/late": asyncio.Event(), "/v1.0/me": asyncio.Event()}
    replies["/v1.0/me"].set()
    seen: list[str | None] = []

    async def graph(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        await replies[request.url.path].wait()
        return httpx.Response(401 if request.headers["authorization"] == "Bearer token-1" else 200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(graph), auth=auth) as http:
        early = asyncio.create_task(http.get("https://graph.example/v1.0/early"))
        late = asyncio.create_task(http.get("https://graph.example/v1.0/late"))
        await until(lambda: len(seen) == 2)  # both sent with token-1
        replies["/v1.0/early"].set()
        assert (await early).status_code == 401
        await asyncio.gather(auth.force_refresh(), auth.force_refresh())  # two hooks, one refresh

        replies["/v1.0/late"].set()
        assert (await late).status_code == 401  # its 401 arrives after the refresh landed
        await auth.force_refresh()  # its hook: a newer token is already there
        assert (await http.get("https://graph.example/v1.0/me")).status_code == 200

    assert fake.calls == [False, True]
    assert seen == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


async def test_hook_running_after_the_refresh_landed_does_not_refresh_again() -> None:
    fake = FakeSession()
    auth = GraphAuth(fake)  # type: ignore[arg-type]

    def graph(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401 if request.headers["authorization"] == "Bearer token-1" else 200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(graph), auth=auth) as http:
        first, second = await asyncio.gather(
            http.get("https://graph.example/v1.0/a"), http.get("https://graph.example/v1.0/b")
        )
        assert first.status_code == second.status_code == 401  # both refusals seen before any refresh
        await auth.force_refresh()  # the first request's hook
        await auth.force_refresh()  # the second's, after the refresh landed

    assert fake.calls == [False, True]


async def test_token_goes_to_graph_only() -> None:
    auth = GraphAuth(FakeSession())  # type: ignore[arg-type]
    sent: list[tuple[str, str | None]] = []

    def anywhere(request: httpx.Request) -> httpx.Response:
        sent.append((f"{request.url.scheme}://{request.url.host}", request.headers.get("authorization")))
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(anywhere), auth=auth) as http:
        await http.get("https://graph.example/v1.0/me")
        await http.get("https://download.example/download.aspx?tempauth=x")
        await http.get("http://graph.example/v1.0/me")  # another origin: the scheme differs

    assert sent == [
        ("https://graph.example", "Bearer token-1"),
        ("https://download.example", None),
        ("http://graph.example", None),
    ]


async def test_token_near_expiry_is_fetched_again() -> None:
    fake = FakeSession()
    fake.lifetime = 200.0  # under the five-minute margin
    auth = GraphAuth(fake)  # type: ignore[arg-type]

    await auth.access_token()
    await auth.access_token()

    assert fake.calls == [False, False]


def test_sync_clients_are_refused() -> None:
    auth = GraphAuth(FakeSession())  # type: ignore[arg-type]
    with (
        httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(200)), auth=auth) as http,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        http.get("https://graph.example/v1.0/me")
