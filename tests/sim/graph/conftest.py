"""Fixtures for the simulated Graph: the API and its download host on two HTTPS loopback servers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import quickxorhash

from celeste_desktop.sim.graph import GraphSim
from celeste_desktop.sim.http import SimLoop, SimServer
from celeste_desktop.sim.tenant import build_demo_tenant
from celeste_desktop.sim.tls import SimTls, make_tls
from celeste_desktop.sim.tokens import TokenAuthority

ALL_SCOPES = "Files.Read.All Sites.Read.All User.Read offline_access"


@dataclass
class GraphEnv:
    """One simulator with its servers; helpers reach the tests through this fixture."""

    sim: GraphSim
    tokens: TokenAuthority
    tls: SimTls
    graph_server: SimServer
    download_server: SimServer

    @property
    def api(self) -> str:
        return self.sim.base_url + "/v1.0"

    def token(self, scopes: str = ALL_SCOPES, lifetime_s: int = 3600, **claims: Any) -> str:
        body = {"aud": "https://graph.microsoft.com", "scp": scopes, "upn": "it.officer@mysimyacht.onmicrosoft.com",
                "oid": "11111111-2222-3333-4444-555555555555", "tid": "tenant", "name": "Morgan Reyes"}
        body.update(claims)
        return self.tokens.mint(body, lifetime_s=lifetime_s)

    def client(self, scopes: str = ALL_SCOPES, **kwargs: Any) -> httpx.AsyncClient:
        """An authorised client for the Graph API (no redirects followed: tests look at the 302)."""
        headers = {"Authorization": f"Bearer {self.token(scopes)}"}
        return httpx.AsyncClient(base_url=self.api, headers=headers, verify=self.tls.client_context(),
                                 timeout=30, **kwargs)

    def anonymous(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self.tls.client_context(), timeout=30)

    @staticmethod
    def qxh(data: bytes) -> str:
        """QuickXorHash by the installed C package: independent of the simulator's own code."""
        hasher = quickxorhash.quickxorhash()
        hasher.update(data)
        return base64.b64encode(hasher.digest()).decode()


@pytest.fixture(scope="session")
def graph_tls(tmp_path_factory: pytest.TempPathFactory) -> SimTls:
    return make_tls(Path(tmp_path_factory.mktemp("graph-tls")))


@pytest.fixture(scope="session")
def graph_loop() -> Iterator[SimLoop]:
    loop = SimLoop()
    yield loop
    loop.close()
    loop.loop.close()


@pytest.fixture
def graph(graph_tls: SimTls, graph_loop: SimLoop) -> Iterator[GraphEnv]:
    tokens = TokenAuthority("https://login.microsoftonline.com/tenant/v2.0")
    sim = GraphSim(tokens=tokens, tenant=build_demo_tenant(seed=1))
    api = SimServer("graph", sim.handler, ssl_context=graph_tls.server_context)
    download = SimServer("download", sim.download_handler, ssl_context=graph_tls.server_context)
    graph_loop.start_servers([api, download])
    sim.base_url = api.base_url
    # Another origin, as SharePoint's download host is: "localhost" instead of 127.0.0.1.
    sim.download_base_url = f"https://localhost:{download.port}"
    yield GraphEnv(sim, tokens, graph_tls, api, download)
    graph_loop.stop_servers([api, download])


@pytest.fixture
async def client(graph: GraphEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with graph.client() as http:
        yield http
