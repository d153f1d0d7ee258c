"""The simulated Supabase project: Storage, TUS resumable uploads and PostgREST on one origin.

One server answers ``/storage/v1/...`` (``supabase_storage``, ``supabase_tus``) and
``/rest/v1/...`` (``supabase_rest``) like a real project URL; the gateway's ``apikey`` rule is
applied first (``supabase_auth``). Faults are still picked per service: requests under
``/rest/`` count as ``rest``, everything else as ``storage`` (see ``service_for_path``).
Objects, resumable uploads and rows persist under ``data_dir`` so a demo restart keeps them and
tests can inspect them through ``list_objects``, ``read_object`` and ``rows``.

    sim = SupabaseSim(tokens=TokenAuthority("supabase-sim"), faults=plan, data_dir=tmp)
    server = sim.make_server(ssl_context=tls.server_context)
    loop.start_servers([server])          # sim.base_url now answers https://127.0.0.1:PORT
"""

from __future__ import annotations

import ssl
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celeste_desktop.sim.faults import FaultPlan
from celeste_desktop.sim.http import Request, Response, Router, SimServer
from celeste_desktop.sim.supabase_auth import KeyMint, Refusal, check_apikey
from celeste_desktop.sim.supabase_objects import (
    BucketConfig,
    ObjectStore,
    StoredObject,
    TransferCounters,
)
from celeste_desktop.sim.supabase_rest import RestApi
from celeste_desktop.sim.supabase_storage import StorageApi
from celeste_desktop.sim.supabase_tables import TABLES, Table
from celeste_desktop.sim.supabase_tus import CHUNK_SIZE, TusApi, TusUpload
from celeste_desktop.sim.tokens import TokenAuthority

DEFAULT_GLOBAL_FILE_SIZE_LIMIT = 50 * 1024**3  # a paid plan's setting; the free plan has 50 MB
SERVER_NAME = "supabase"


def service_for_path(path: str) -> str:
    """The fault-plan service a request belongs to: ``rest`` under /rest/, else ``storage``."""
    return "rest" if path.startswith("/rest/") else "storage"


class SupabaseSim:
    """A Supabase project: Storage REST, TUS 1.0.0, and the app's PostgREST tables."""

    def __init__(
        self,
        *,
        tokens: TokenAuthority,
        faults: FaultPlan,
        data_dir: Path,
        buckets: dict[str, BucketConfig] | None = None,
        tus_url_lifetime_s: int = 24 * 3600,
        global_file_size_limit: int = DEFAULT_GLOBAL_FILE_SIZE_LIMIT,
        tus_chunk_size: int = CHUNK_SIZE,
        max_rows: int = 1000,
        tables: dict[str, Table] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tokens = tokens
        self.faults = faults
        self.data_dir = data_dir
        self.keys = KeyMint(tokens)
        self.counters = TransferCounters()
        self.clock_skew_s = 0.0  # tests move the sim's time forward (URL expiry) without sleeping
        self._clock = clock
        self._base_url: str | None = None
        self.server: SimServer | None = None
        data_dir.mkdir(parents=True, exist_ok=True)
        self.objects = ObjectStore(data_dir, dict(buckets or {"documents": BucketConfig()}), self.now)
        self.storage = StorageApi(
            self.objects, tokens, self.counters, global_file_size_limit=global_file_size_limit
        )
        self.tus = TusApi(
            self.storage,
            url_lifetime_s=tus_url_lifetime_s,
            clock=self.now,
            public_origin=self._origin,
            chunk_size=tus_chunk_size,
        )
        self.rest = RestApi(tokens, self.counters, data_dir, self.now, tables=tables or TABLES, max_rows=max_rows)
        self.router = Router()
        self.storage.register(self.router)
        self.tus.register(self.router)
        self.rest.register(self.router)
        self._anon_key: str | None = None
        self._service_key: str | None = None

    # -- wiring ----------------------------------------------------------------------------

    def make_server(self, *, ssl_context: ssl.SSLContext | None = None) -> SimServer:
        """The one server of this project (name ``supabase``); faults picked per path's service."""
        self.server = SimServer(
            SERVER_NAME, self.handler, ssl_context=ssl_context, faults=self.faults, service_for=service_for_path
        )
        return self.server

    @property
    def base_url(self) -> str:
        """The project URL (``https://127.0.0.1:PORT``): set it, or let ``make_server``'s server tell."""
        if self._base_url is not None:
            return self._base_url
        if self.server is not None and self.server.port:
            return self.server.base_url
        raise RuntimeError("SupabaseSim.base_url is known once its server has started")

    @base_url.setter
    def base_url(self, value: str) -> None:
        self._base_url = value.rstrip("/")

    def now(self) -> float:
        return self._clock() + self.clock_skew_s

    def advance(self, seconds: float) -> None:
        """Move the sim's clock forward (TUS URL expiry) without touching the token clock."""
        self.clock_skew_s += seconds

    def _origin(self, request: Request) -> str:
        """Scheme and host for an absolute ``Location``: the Host the client used, as the real server."""
        scheme = urllib.parse.urlsplit(self.base_url).scheme if self._has_base_url() else "http"
        host = request.header("x-forwarded-host") or request.header("host")
        return f"{scheme}://{host}" if host else self.base_url

    def _has_base_url(self) -> bool:
        return self._base_url is not None or (self.server is not None and bool(self.server.port))

    async def handler(self, request: Request) -> Response:
        """The whole project: the gateway's apikey check, then Storage, TUS or PostgREST."""
        try:
            if request.method != "OPTIONS":  # the gateway answers CORS preflights itself
                check_apikey(self.tokens, request)
            response = await self.router(request)
        except Refusal as refusal:
            response = refusal.response
        if request.method == "HEAD" and isinstance(response.body, bytes) and response.body:
            # A HEAD answer carries no body; h11 would refuse to send one.
            response = Response(response.status, b"", response.headers, close=response.close)
        return response

    # -- keys ------------------------------------------------------------------------------

    def mint_anon_key(self) -> str:
        return self.keys.anon_key()

    def mint_service_key(self) -> str:
        return self.keys.service_key()

    def mint_yacht_key(self, yacht_id: str, *, sub: str | None = None, lifetime_s: int | None = None) -> str:
        """A yacht-scoped key (``role: authenticated``, ``yacht_id``, ``sub``); a year by default."""
        if lifetime_s is None:
            return self.keys.yacht_key(yacht_id, sub=sub)
        return self.keys.yacht_key(yacht_id, sub=sub, lifetime_s=lifetime_s)

    @property
    def anon_key(self) -> str:
        """The project's anon key (one per sim, as a real project has one)."""
        if self._anon_key is None:
            self._anon_key = self.mint_anon_key()
        return self._anon_key

    @property
    def service_key(self) -> str:
        if self._service_key is None:
            self._service_key = self.mint_service_key()
        return self._service_key

    # -- inspection (tests, GUI self-test) -------------------------------------------------

    def list_objects(self, bucket: str | None = None) -> list[StoredObject]:
        return self.objects.all(bucket)

    def object_info(self, bucket: str, key: str) -> StoredObject | None:
        return self.objects.get(bucket, key)

    def object_path(self, bucket: str, key: str) -> Path:
        obj = self.objects.get(bucket, key)
        if obj is None:
            raise KeyError(f"{bucket}/{key}")
        return self.objects.path_of(obj)

    def read_object(self, bucket: str, key: str) -> bytes:
        return self.object_path(bucket, key).read_bytes()

    def rows(self, table: str) -> list[dict[str, Any]]:
        return list(self.rest.store.snapshot(table).values())

    def tus_uploads(self) -> list[TusUpload]:
        return list(self.tus.uploads.values())

    @property
    def tus_location_prefix(self) -> str | None:
        return self.tus.location_prefix

    @tus_location_prefix.setter
    def tus_location_prefix(self, value: str | None) -> None:
        """Hand out TUS Locations under another host/path (…/upload/resumable) to test clients."""
        self.tus.location_prefix = value
