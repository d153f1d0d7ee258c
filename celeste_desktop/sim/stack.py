"""All simulated services together: Entra ID, Graph (+ its download host) and Supabase.

``SimStack.start()`` binds every server on 127.0.0.1 with an ephemeral port, over HTTPS with a
throwaway CA, on an event loop of its own; ``settings_json()`` gives the settings that point the
app at them, under the same names as a provisioning file. Tests, the demo mode and the
benchmarks all use this one composition.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celeste_desktop.sim.entra import EntraSim, SimUser
from celeste_desktop.sim.faults import FaultPlan
from celeste_desktop.sim.graph import GraphSim
from celeste_desktop.sim.http import SimLoop, SimServer
from celeste_desktop.sim.supabase import SupabaseSim
from celeste_desktop.sim.tenant import build_demo_tenant
from celeste_desktop.sim.tls import SimTls, make_tls
from celeste_desktop.sim.tokens import TokenAuthority

DEMO_YACHT_ID = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"
DEMO_TENANT_ID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
DEMO_CLIENT_ID = "8e4a0c7d-0f3b-4a55-9b1e-2c3d4e5f6a7b"


@dataclass
class SimStack:
    """A running set of simulators; stop it with ``stop()`` or use ``running()``."""

    loop: SimLoop
    tls: SimTls
    faults: FaultPlan
    entra: EntraSim
    graph: GraphSim
    supabase: SupabaseSim
    servers: dict[str, SimServer]
    data_dir: Path
    yacht_id: str
    yacht_key: str
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(
        cls,
        *,
        data_dir: Path,
        tenant_size: int | None = None,
        auto_consent: bool = False,
        faults: FaultPlan | None = None,
        yacht_id: str = DEMO_YACHT_ID,
        seed: int = 1,
        device_code_interval_s: int = 5,
        download_url_lifetime_s: float = 3600.0,
    ) -> SimStack:
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        plan = faults or FaultPlan()
        tls = make_tls(data_dir / "tls")
        entra_tokens = TokenAuthority(issuer=f"https://sts.windows.net/{DEMO_TENANT_ID}/")
        supabase_tokens = TokenAuthority(issuer="supabase-sim")
        tenant = build_demo_tenant(seed=seed, tenant_size=tenant_size)
        entra = EntraSim(
            tokens=entra_tokens,
            faults=plan,
            tenant_id=DEMO_TENANT_ID,
            client_id=DEMO_CLIENT_ID,
            auto_consent=auto_consent,
            users=[SimUser(user_principal_name=tenant.user_upn, display_name=tenant.user_name)],
            device_code_interval_s=device_code_interval_s,
        )
        graph = GraphSim(tokens=entra_tokens, tenant=tenant, download_url_lifetime_s=download_url_lifetime_s)
        supabase = SupabaseSim(tokens=supabase_tokens, faults=plan, data_dir=data_dir / "supabase")
        servers = {
            "entra": SimServer("entra", entra.handler, ssl_context=tls.server_context, faults=plan),
            "graph": SimServer("graph", graph.handler, ssl_context=tls.server_context, faults=plan),
            "download": SimServer("download", graph.download_handler, ssl_context=tls.server_context, faults=plan),
            "supabase": supabase.make_server(ssl_context=tls.server_context),
        }
        loop = SimLoop()
        try:
            loop.start_servers(servers.values())
        except BaseException:
            loop.close()
            raise
        entra.base_url = servers["entra"].base_url
        graph.base_url = servers["graph"].base_url
        graph.download_base_url = servers["download"].base_url.replace("127.0.0.1", "localhost")
        return cls(
            loop=loop,
            tls=tls,
            faults=plan,
            entra=entra,
            graph=graph,
            supabase=supabase,
            servers=servers,
            data_dir=data_dir,
            yacht_id=str(uuid.UUID(yacht_id)),
            yacht_key=supabase.mint_yacht_key(yacht_id),
        )

    def settings_json(self) -> dict[str, Any]:
        """The settings that point the app at these simulators (provisioning-file names)."""
        return {
            "authority": self.servers["entra"].base_url,
            "tenant": DEMO_TENANT_ID,
            "client_id": DEMO_CLIENT_ID,
            "graph_url": f"{self.servers['graph'].base_url}/v1.0",
            "supabase_url": self.servers["supabase"].base_url,
            "supabase_anon_key": self.supabase.anon_key,
            "supabase_key": self.yacht_key,
            "yacht_id": self.yacht_id,
            "ca_bundle": str(self.tls.ca_bundle),
            "data_dir": str(self.data_dir),
        }

    def reset_stats(self) -> None:
        for server in self.servers.values():
            server.stats.reset()

    def bytes_seen(self) -> int:
        """Every HTTP byte the simulators received and sent (the data-budget tests compare to it)."""
        return sum(server.stats.bytes_in + server.stats.bytes_out for server in self.servers.values())

    def take_offline(self) -> None:
        """Close every server (connections are refused, as with no link) but keep the state."""
        self.loop.stop_servers(self.servers.values())

    def bring_online(self) -> None:
        """Listen again on the same ports after ``take_offline()``."""
        self.loop.start_servers(self.servers.values())

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.loop.stop_servers(self.servers.values())
        self.loop.close()


@contextmanager
def running(**kwargs: Any) -> Iterator[SimStack]:
    stack = SimStack.start(**kwargs)
    try:
        yield stack
    finally:
        stack.stop()
