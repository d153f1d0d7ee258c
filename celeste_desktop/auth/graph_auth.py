"""``GraphAuth``: the ``httpx.Auth`` that puts a fresh Microsoft Graph token on every request.

The token is kept in memory until MSAL would refresh it (five minutes before it expires) and is
then fetched again off the event loop (MSAL blocks). However many requests need a token, or are
refused with a 401, at the same moment, one refresh runs and all of them share its result
(single flight). ``force_refresh`` is the ``refresh`` hook for ``RetryPolicy.send``, which keeps
"on a 401, refresh once and retry once".

Only requests to the Graph origin get the token: a pre-authenticated download URL, or anything
else sent through the same client, never carries it.

A sign-in service that cannot be reached surfaces as an ``httpx.ConnectError``, so the retry
policy backs off and retries it like any other network failure on the satellite link.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field

import httpx

from celeste_desktop.auth.errors import RETRYABLE_CODES
from celeste_desktop.auth.session import AccessToken, MsalSession
from celeste_desktop.domain.errors import ServiceUnavailable

__all__ = ["GraphAuth"]

# MSAL treats a token with under five minutes left as expired; do the same.
REFRESH_MARGIN_S = 300.0
_REFUSED_KEPT = 8  # tokens change about hourly: a few refused ones cover every straggler


@dataclass(frozen=True)
class _Held:
    token: AccessToken = field(repr=False)
    epoch: int


class GraphAuth(httpx.Auth):
    """Bearer tokens for Graph from an ``MsalSession``; use with an ``httpx.AsyncClient``."""

    def __init__(
        self,
        session: MsalSession,
        *,
        graph_url: str | None = None,
        clock: Callable[[], float] = time.time,
        margin: float = REFRESH_MARGIN_S,
    ) -> None:
        self._session = session
        origin = httpx.URL(graph_url or session.settings.effective_graph_url)
        self._origin = (origin.scheme, origin.host, origin.port)
        self._clock = clock
        self._margin = margin
        self._held: _Held | None = None
        # Tokens Graph answered 401 to. Kept after a refresh: a request refused before the
        # refresh landed may run its refresh hook after it, and must then find the newer token.
        self._refused: collections.deque[str] = collections.deque(maxlen=_REFUSED_KEPT)
        self._flight: asyncio.Task[_Held] | None = None
        self._flight_forced = False
        self.refreshes = 0  # token fetches that went to MSAL (for diagnostics and tests)

    def __repr__(self) -> str:
        return f"GraphAuth(session={self._session!r})"

    # -- httpx.Auth ------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("GraphAuth fetches tokens off the event loop: use it with httpx.AsyncClient")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if (request.url.scheme, request.url.host, request.url.port) != self._origin:
            yield request
            return
        token = await self.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and token not in self._refused:
            self._refused.append(token)

    # -- tokens ----------------------------------------------------------------------------------

    async def access_token(self) -> str:
        """A token with more than the margin left; refreshed (once for all callers) when not."""
        held = self._held
        if (
            held is not None
            and held.epoch == self._session.epoch
            and held.token.value not in self._refused
            and held.token.expires_on - self._clock() > self._margin
        ):
            return held.token.value
        forced = held is not None and held.token.value in self._refused
        return (await self._single_flight(force=forced)).token.value

    async def force_refresh(self) -> None:
        """Graph refused the token (a 401 seen by this auth): get a new one, unless another
        caller already has.

        Every request refused with the same token shares one refresh; a request whose 401
        arrives, or whose hook runs, after that refresh landed finds the newer token and
        retries with it. With no refusal seen yet, it refreshes unconditionally.
        """
        held = self._held
        if held is not None and self._refused and held.token.value not in self._refused:
            return
        try:
            await self._single_flight(force=True)
        except httpx.TransportError:
            # The hook runs outside the policy's network retries; the retried request fetches
            # the token again (the refused one is never reused), where a failure is retried.
            return

    async def _single_flight(self, *, force: bool) -> _Held:
        while True:
            flight = self._flight
            if flight is None or flight.done():
                flight = asyncio.get_running_loop().create_task(self._fetch(force))
                flight.add_done_callback(self._landed)
                self._flight, self._flight_forced = flight, force
            joined_forced = self._flight_forced
            # shield: a caller cancelled while waiting must not cancel the refresh for the others.
            held = await asyncio.shield(flight)
            if not force or joined_forced or held.token.value not in self._refused:
                return held
            # Joined a plain refresh that returned the refused token from the cache: force one.

    async def _fetch(self, force: bool) -> _Held:
        epoch = self._session.epoch
        self.refreshes += 1
        try:
            token = await asyncio.to_thread(self._session.acquire_silent, force_refresh=force)
        except ServiceUnavailable as exc:
            if exc.code not in RETRYABLE_CODES:
                raise
            # Unreachable sign-in is a network failure like any other: the policy retries it.
            raise httpx.ConnectError(exc.message) from None
        held = _Held(token, epoch)
        self._held = held
        return held

    def _landed(self, flight: asyncio.Task[_Held]) -> None:
        if self._flight is flight:
            self._flight = None
        if not flight.cancelled():
            flight.exception()  # retrieved here, so a refresh nobody awaited logs no warning
