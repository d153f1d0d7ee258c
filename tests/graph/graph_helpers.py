"""Helpers of the Graph client tests: token minting, a harness, a fake store fed by ``save_page``.

Tokens are minted straight from the simulated Entra ID's token authority (the sign-in flow is
tested elsewhere); `StaticTokenAuth` is the smallest `httpx.Auth` with a refresh hook.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field

import httpx
import quickxorhash

from celeste_desktop.domain.models import RemoteChange, RemoteItem
from celeste_desktop.engine.index import apply_changes
from celeste_desktop.graph.client import GraphClient
from celeste_desktop.graph.delta import DeltaEnumerator, DeltaPage
from celeste_desktop.graph.download import Downloader
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.policy import PolicyEvent, RetryPolicy
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.sim.tenant_model import Item

SCOPES = "Files.Read.All User.Read Sites.Read.All"


class StaticTokenAuth(httpx.Auth):
    """Bearer tokens from `mint`; `refresh` mints a new one (as GraphAuth.force_refresh would)."""

    def __init__(self, mint: Callable[[], str]) -> None:
        self._mint = mint
        self.token = mint()
        self.refreshes = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request

    async def refresh(self) -> None:
        self.refreshes += 1
        self.token = self._mint()


@dataclass
class SentRequest:
    at: float  # virtual time
    method: str
    url: httpx.URL
    headers: httpx.Headers


@dataclass
class GraphHarness:
    sim: SimStack
    clock: FakeClock
    policy: RetryPolicy
    http: httpx.AsyncClient
    auth: StaticTokenAuth
    client: GraphClient
    events: list[PolicyEvent] = field(default_factory=list)
    sent: list[SentRequest] = field(default_factory=list)

    @property
    def personal(self) -> str:
        return self.sim.graph.personal_drive_id

    @property
    def library(self) -> str:
        return self.sim.graph.library_drive_id

    def item(self, ref: str, drive_id: str | None = None) -> Item:
        return self.sim.graph.find(ref, drive_id)

    def client_with(self, scopes: str) -> GraphClient:
        auth = StaticTokenAuth(lambda: mint(self.sim, scopes))
        return GraphClient(http=self.http, policy=self.policy, base_url=self.sim.settings_json()["graph_url"],
                           auth=auth, refresh=auth.refresh)

    def enumerator(self, page_size: int = 1000) -> DeltaEnumerator:
        return DeltaEnumerator(self.client, page_size=page_size)

    def downloader(self, **kwargs: int) -> Downloader:
        return Downloader(self.client, clock=self.clock, **kwargs)

    def sent_to(self, host_port: str) -> list[SentRequest]:
        return [s for s in self.sent if f"{s.url.host}:{s.url.port}" == host_port]

    @property
    def download_host(self) -> str:
        return f"localhost:{self.sim.servers['download'].port}"


def mint(sim: SimStack, scopes: str = SCOPES, lifetime_s: int = 3600) -> str:
    return sim.graph.tokens.mint(
        {"aud": "https://graph.microsoft.com", "scp": scopes, "upn": sim.graph.tenant.user_upn,
         "oid": "11111111-2222-3333-4444-555555555555", "tid": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
         "name": sim.graph.tenant.user_name},
        lifetime_s=lifetime_s,
    )



def qxh(data: bytes) -> str:
    """QuickXorHash by the C package: independent of the app's own implementation."""
    hasher = quickxorhash.quickxorhash()
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode()


# -- an index like the engine's, fed by save_page --------------------------------------------------


class SimulatedKill(Exception):
    """The app was killed while saving a page."""


@dataclass
class FakeStore:
    """Applies saved pages as the store does (changes and cursor together), and can 'crash'."""

    items: dict[str, RemoteItem] = field(default_factory=dict)
    pages: list[DeltaPage] = field(default_factory=list)
    next_link: str | None = None
    delta_link: str | None = None
    crash_after: int | None = None  # raise on the page after this many were saved

    def save(self, page: DeltaPage) -> None:
        if self.crash_after is not None and len(self.pages) >= self.crash_after:
            raise SimulatedKill("simulated kill")
        self.items = apply_changes(self.items, page.changes)
        self.pages.append(page)
        self.next_link = page.next_link
        if page.delta_link is not None:
            self.delta_link = page.delta_link

    def below(self, scope_id: str) -> dict[str, tuple[str, str | None]]:
        """Items whose parent chain reaches ``scope_id`` (the scope included): id -> (name, parent)."""
        return {i.item_id: (i.name, i.parent_id) for i in self.items.values() if reaches(self.items, i, scope_id)}

    def known_ids(self) -> list[str]:
        return list(self.items)

    def folders(self) -> Mapping[str, str | None]:
        return {i.item_id: i.parent_id for i in self.items.values() if i.is_folder}


def reaches(items: Mapping[str, RemoteItem], item: RemoteItem, scope_id: str) -> bool:
    current: RemoteItem | None = item
    for _ in range(100):
        if current is None:
            return False
        if current.item_id == scope_id:
            return True
        current = items.get(current.parent_id) if current.parent_id else None
    return False


def truth_below(sim: SimStack, scope_id: str) -> dict[str, tuple[str, str | None]]:
    tenant = sim.graph.tenant
    with tenant.lock:
        return {i.id: (i.name, i.parent_id) for i in tenant.walk(scope_id)}


def ids(changes: Iterable[RemoteChange]) -> list[str]:
    return [c.item_id for c in changes]
