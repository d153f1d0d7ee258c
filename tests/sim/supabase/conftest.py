"""Fixtures for the simulated Supabase: one HTTPS origin on loopback, keys, and raw-socket helpers.

The raw helpers send requests that httpx will not: a body cut off mid-way (a dropped satellite
link) or headers that announce a body never sent (to show an answer comes before the body).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from celeste_desktop.sim.faults import FaultPlan
from celeste_desktop.sim.http import SimLoop, SimServer
from celeste_desktop.sim.supabase import SupabaseSim
from celeste_desktop.sim.tls import SimTls, make_tls
from celeste_desktop.sim.tokens import TokenAuthority

YACHT_A = "0a5f6c1e-3b7d-4c2a-9e8f-1d2c3b4a5e6f"
YACHT_B = "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"


@dataclass
class Supa:
    """One running project: the sim, its server, and clients with the keys a test asks for."""

    sim: SupabaseSim
    server: SimServer
    faults: FaultPlan
    tls: SimTls
    loop: SimLoop
    clients: list[httpx.Client]
    # Tests reach these through the fixture: importing "conftest" is ambiguous in a suite.
    yacht_a: ClassVar[str] = YACHT_A
    yacht_b: ClassVar[str] = YACHT_B

    @property
    def base(self) -> str:
        return self.server.base_url

    def client(self, bearer: str | None = None, *, apikey: str | None = None) -> httpx.Client:
        """A client with the anon key as apikey (unless given) and ``bearer`` as Authorization."""
        headers = {"apikey": apikey if apikey is not None else self.sim.anon_key}
        if bearer is not None:
            headers["authorization"] = f"Bearer {bearer}"
        client = httpx.Client(
            base_url=self.base,
            verify=self.tls.client_context(),
            trust_env=False,
            headers=headers,
            timeout=20,
        )
        self.clients.append(client)
        return client

    def yacht(self, yacht_id: str = YACHT_A) -> httpx.Client:
        return self.client(self.sim.mint_yacht_key(yacht_id))

    def service(self) -> httpx.Client:
        return self.client(self.sim.service_key, apikey=self.sim.service_key)

    @contextlib.contextmanager
    def tls_socket(self) -> Iterator[ssl.SSLSocket]:
        """A raw TLS connection to the server, for requests httpx will not send."""
        plain = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            tls = self.tls.client_context().wrap_socket(plain, server_hostname="127.0.0.1")
        except BaseException:
            plain.close()
            raise
        with tls:
            yield tls

    def raw(self, head: str, body: bytes = b"", *, close_after_send: bool = False) -> bytes:
        """Send ``head`` (request line and headers) and ``body`` on a fresh TLS socket.

        Returns everything the server sent until it closed. With ``close_after_send`` our side
        ends right after ``body`` (a FIN, so every byte sent arrives): the link dropped mid-body.
        """
        with self.tls_socket() as tls:
            tls.sendall(head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body)
            if close_after_send:
                tls.shutdown(socket.SHUT_WR)  # ends TLS too: nothing readable comes back
                while tls.recv(65536):
                    pass
                return b""
            received = b""
            while True:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                received += chunk
            return received


@pytest.fixture(scope="session")
def sim_tls(tmp_path_factory: pytest.TempPathFactory) -> SimTls:
    return make_tls(Path(tmp_path_factory.mktemp("supabase-tls")))


@pytest.fixture(scope="session")
def sim_loop() -> Iterator[SimLoop]:
    loop = SimLoop()
    yield loop
    loop.close()
    loop.loop.close()


@pytest.fixture
def make_supa(sim_tls: SimTls, sim_loop: SimLoop, tmp_path: Path) -> Iterator[Callable[..., Supa]]:
    """Start a project with the given ``SupabaseSim`` options (a fresh data_dir by default)."""
    started: list[Supa] = []

    def start(**options: Any) -> Supa:
        faults = options.pop("faults", None) or FaultPlan(seed=1)
        tokens = options.pop("tokens", None) or TokenAuthority("supabase-sim")
        data_dir = options.pop("data_dir", None) or tmp_path / f"supabase-{len(started)}"
        sim = SupabaseSim(tokens=tokens, faults=faults, data_dir=data_dir, **options)
        server = sim.make_server(ssl_context=sim_tls.server_context)
        sim_loop.start_servers([server])
        supa = Supa(sim, server, faults, sim_tls, sim_loop, [])
        started.append(supa)
        return supa

    yield start
    for supa in started:
        for client in supa.clients:
            client.close()
        sim_loop.stop_servers([supa.server])


@pytest.fixture
def supa(make_supa: Callable[..., Supa]) -> Supa:
    return make_supa()
