"""Builds the running parts from settings: HTTP clients, policies, sign-in, Graph, Supabase, engine.

The GUI and the CLI both call ``open_services``; nothing here is global, and nothing runs at
import time. Adapters between the engine's Protocols and the concrete clients live here too,
so ``engine`` never depends on how the clients are put together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from celeste_desktop.auth.graph_auth import GraphAuth
from celeste_desktop.auth.session import MsalSession, http_options_for
from celeste_desktop.auth.vault import Vault
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings
from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.domain.rules import SkipPatterns
from celeste_desktop.engine.budget import BudgetStatus, budget_status, plan_period
from celeste_desktop.engine.events import Event
from celeste_desktop.engine.runner import EngineConfig, SyncEngine
from celeste_desktop.engine.schedule import parse_windows
from celeste_desktop.graph.client import GraphClient
from celeste_desktop.graph.delta import DeltaEnumerator
from celeste_desktop.graph.download import Downloader
from celeste_desktop.net.clock import Clock, SystemClock
from celeste_desktop.net.http import make_async_client
from celeste_desktop.net.policy import PolicyEvent, RetryPolicy
from celeste_desktop.net.shaping import ByteMeter, RateLimiter
from celeste_desktop.storage.registration import DocumentRecord, Registrar
from celeste_desktop.storage.rest import RestClient
from celeste_desktop.storage.shore import ShoreStatus
from celeste_desktop.storage.target import SupabaseTarget
from celeste_desktop.storage.tus import TusCheckpoint
from celeste_desktop.storage.uploader import MoveOutcome, StorageUploader, UploadResult
from celeste_desktop.store.db import StateDB, open_state

log = logging.getLogger(__name__)


class StateTusCheckpoints:
    """TUS upload URL and confirmed offset, kept in the transfer checkpoint of the local state."""

    def __init__(self, state: StateDB) -> None:
        self._state = state

    @staticmethod
    def _ids(upload_id: str) -> tuple[str, str]:
        drive_id, _, item_id = upload_id.partition(":")
        return drive_id, item_id

    def load(self, upload_id: str) -> TusCheckpoint | None:
        checkpoint = self._state.checkpoint(*self._ids(upload_id))
        if checkpoint is None or not checkpoint.tus_url:
            return None
        return TusCheckpoint(checkpoint.tus_url, checkpoint.tus_offset)

    def save(self, upload_id: str, url: str, offset: int) -> None:
        drive_id, item_id = self._ids(upload_id)
        self._state.save_tus_progress(drive_id, item_id, tus_url=url, offset=offset)

    def clear(self, upload_id: str) -> None:
        drive_id, item_id = self._ids(upload_id)
        self._state.save_tus_progress(drive_id, item_id, tus_url="", offset=0)


@dataclass
class SupabaseSink:
    """The engine's Destination: objects through the uploader, rows through the registrar."""

    uploader: StorageUploader
    registrar: Registrar

    async def prepare(self) -> None:
        # The bucket's rules, asked once; it also opens the connection the first uploads use.
        await self.uploader.bucket_limit()

    async def upload(
        self, source: Path, key: str, *, upload_id: str, content_type: str | None = None,
        display_path: str | None = None, progress: Callable[[int], None] | None = None, verify: bool = True,
        size: int | None = None, ready: Callable[[int], Awaitable[None]] | None = None,
    ) -> UploadResult:  # fmt: skip
        return await self.uploader.upload(
            source, key, upload_id=upload_id, content_type=content_type, display_path=display_path,
            progress=progress, verify=verify, size=size, ready=ready,
        )  # fmt: skip

    async def object_size(self, key: str) -> int | None:
        return await self.uploader.object_size(key)

    async def move(self, source_key: str, destination_key: str) -> MoveOutcome:
        return await self.uploader.move(source_key, destination_key)

    async def delete(self, key: str) -> bool:
        return await self.uploader.delete(key)

    async def register(self, record: DocumentRecord, *, reindex: bool = True) -> str:
        return await self.registrar.register(record, reindex=reindex)

    async def mark_deleted(self, record: DocumentRecord) -> str:
        return await self.registrar.mark_deleted(record)


@dataclass
class GraphSource:
    """The engine's Source: delta enumeration and verified downloads."""

    enumerator: DeltaEnumerator
    downloader: Downloader

    def __post_init__(self) -> None:
        self.enumerate = self.enumerator.enumerate
        self.download = self.downloader.download


@dataclass
class _StoredUsage:
    """The bytes booked in the state for a plan period and for today, as last read."""

    period_start: date
    today: date
    month_bytes: int
    day_bytes: int
    read_at: float  # the clock's monotonic time of the reading


class UsageTracker:
    """Counts the bytes on the wire per day (data budget); flushes to the state in batches."""

    # With a budget set, the budget is checked every CHECK_BYTES (counting the bytes not yet
    # written), which keeps the pause within one 6 MiB upload chunk of the budget. The SQLite
    # write happens every FLUSH_BYTES: one per MiB cost 8 % of the app's CPU in benchmark B1,
    # and a kill loses at most that much of the day's count.
    CHECK_BYTES = 1024 * 1024
    FLUSH_BYTES = 8 * 1024 * 1024
    # The engine asks before every file; the period's and the day's stored totals are read from
    # SQLite at most this often (this process's own bytes are added as they are booked, so the
    # figure lags only what another process, a scheduled run beside the window, booked).
    STORED_SECONDS = 5.0

    def __init__(self, state: StateDB, settings: Settings, clock: Clock) -> None:
        self._state = state
        self._settings = settings
        self._clock = clock
        self._stored: _StoredUsage | None = None
        self._pending_sent = 0
        self._pending_received = 0
        self._unchecked = 0
        self._override_until: date | None = None  # "Sync anyway" holds until this plan reset
        self.listeners: list[Callable[[], None]] = []

    @property
    def override(self) -> bool:
        """The officer chose Sync anyway: it holds for the rest of this plan period only."""
        return self._override_until is not None and self._today() < self._override_until

    @override.setter
    def override(self, chosen: bool) -> None:
        period = plan_period(self._today(), self._settings.budget_reset_day)
        self._override_until = period.reset if chosen else None

    def _today(self) -> date:
        return self._clock.now().astimezone().date()

    def on_bytes(self, sent: int, received: int) -> None:
        self._pending_sent += sent
        self._pending_received += received
        self._unchecked += sent + received
        if self._pending_sent + self._pending_received >= self.FLUSH_BYTES:
            self.flush()
        if self._unchecked >= self.CHECK_BYTES:
            self._unchecked = 0
            if self._settings.budget_monthly_mb or self._settings.budget_daily_mb or self.override:
                for listener in list(self.listeners):
                    listener()

    def set_budget(self, settings: Settings) -> None:
        """Budget settings changed while the services run (the banner's Raise budget…)."""
        self._settings = settings

    def flush(self) -> None:
        if self._pending_sent or self._pending_received:
            # Plan days are local days, like the budget's reset day and the chart.
            today = self._clock.now().astimezone().date()
            self._state.add_usage(today, sent=self._pending_sent, received=self._pending_received)
            booked = self._pending_sent + self._pending_received
            self._pending_sent = self._pending_received = 0
            stored = self._stored
            if stored is not None and stored.today == today:
                stored.month_bytes += booked
                stored.day_bytes += booked
            else:
                self._stored = None

    def _stored_usage(self, start: date, today: date) -> tuple[int, int]:
        """The bytes already booked in the state for the period and for today."""
        now = self._clock.monotonic()
        stored = self._stored
        if (
            stored is None
            or (stored.period_start, stored.today) != (start, today)
            or now - stored.read_at > self.STORED_SECONDS
        ):
            month = self._state.usage_total(start, today)
            day = self._state.usage_total(today, today)
            stored = _StoredUsage(
                start, today, month.bytes_sent + month.bytes_received, day.bytes_sent + day.bytes_received, now
            )
            self._stored = stored
        return stored.month_bytes, stored.day_bytes

    def gate_status(self) -> BudgetStatus | None:
        """What the engine checks before each file: None (no reading of the state at all) when
        no budget is set and no Sync anyway holds, else :meth:`status`."""
        settings = self._settings
        if not (settings.budget_monthly_mb or settings.budget_daily_mb or self.override):
            return None
        return self.status()

    def status(self) -> BudgetStatus:
        settings = self._settings
        today = self._clock.now().astimezone().date()
        period = plan_period(today, settings.budget_reset_day)
        month_bytes, day_bytes = self._stored_usage(period.start, today)
        pending = self._pending_sent + self._pending_received
        return budget_status(
            today=today, reset_day=settings.budget_reset_day, monthly_mb=settings.budget_monthly_mb,
            daily_mb=settings.budget_daily_mb, monthly_used=month_bytes + pending,
            daily_used=day_bytes + pending, override=self.override,
        )  # fmt: skip


@dataclass
class Services:
    """Everything a sync needs, built for one settings snapshot; ``aclose()`` when done."""

    paths: AppPaths
    settings: Settings
    vault: Vault
    state: StateDB
    session: MsalSession
    clock: Clock
    meter: ByteMeter
    usage: UsageTracker
    graph_auth: GraphAuth
    graph_http: httpx.AsyncClient
    supabase_http: httpx.AsyncClient
    graph: GraphClient
    source: GraphSource
    sink: SupabaseSink
    shore: ShoreStatus
    target: SupabaseTarget
    policies: list[RetryPolicy] = field(default_factory=list)

    def engine(
        self, emit: Callable[[Event], None], *, wait_for_sign_in: bool = False, offline_wait: float = 0.0
    ) -> SyncEngine:
        settings = self.settings
        account = self.state.account()
        config = EngineConfig(
            yacht_id=settings.yacht_id, spool_dir=self.paths.spool_dir,
            concurrency_small=settings.concurrency_small, concurrency_large=settings.concurrency_large,
            max_attempts=settings.max_attempts, max_file_size=settings.max_file_size_mb * 1024 * 1024,
            skip_patterns=SkipPatterns.from_overrides(settings.skip_patterns or None),
            delete_objects_on_remove=settings.delete_objects_on_remove,
            schedule=parse_windows(settings.schedule), account_upn=account.upn if account else "",
            account_tenant=account.tenant_id if account else "", wait_for_sign_in=wait_for_sign_in,
            offline_wait=offline_wait, recheck_existing=self.state.recovery is not None,
        )  # fmt: skip
        engine = SyncEngine(
            state=self.state, source=self.source, destination=self.sink, config=config, clock=self.clock,
            emit=emit, shore=self.shore, budget=self.usage.gate_status, probe=self.probe,
        )  # fmt: skip
        self.usage.listeners.append(engine.check_budget)
        return engine

    async def probe(self) -> bool:
        """Is the link back? One plain request to Microsoft sign-in, Graph and Supabase, without
        the retry policy (the caller spaces the checks): any HTTP answer means reachable."""
        settings = self.settings

        async def reachable(client: httpx.AsyncClient, url: str) -> bool:
            try:
                response = await client.get(url, timeout=15.0)
                await response.aclose()
            except httpx.HTTPError:
                return False
            return True

        answers = await asyncio.gather(
            reachable(self.graph_http, settings.effective_authority),
            reachable(self.graph_http, settings.effective_graph_url),
            reachable(self.supabase_http, settings.supabase_url),
        )
        return all(answers)

    async def aclose(self) -> None:
        self.usage.flush()
        for client in (self.graph_http, self.supabase_http):
            with contextlib.suppress(Exception):
                await client.aclose()
        self.session.close()
        self.state.close()


def open_services(
    paths: AppPaths,
    settings: Settings,
    vault: Vault,
    *,
    clock: Clock | None = None,
    on_policy_event: Callable[[PolicyEvent], None] | None = None,
    on_secret: Callable[[str], None] | None = None,
) -> Services:
    """Build every client for ``settings``; raises ConfigError naming what is missing."""
    from celeste_desktop.config.settings import check_ready

    problems = check_ready(settings)
    if problems:
        raise problems[0]
    key = vault.get("supabase_key")
    if not key:
        raise ConfigError(
            "supabase_key", "not set; run `celeste-desktop config set supabase_key -` or import a provisioning file"
        )
    clock = clock or SystemClock()
    state = open_state(paths.state_db, now=lambda: datetime.now(UTC))
    meter = ByteMeter()
    usage = UsageTracker(state, settings, clock)
    meter.add_listener(usage.on_bytes)
    up = RateLimiter(settings.upload_limit_bytes or None, clock=clock)
    down = RateLimiter(settings.download_limit_bytes or None, clock=clock)
    options = http_options_for(settings)
    graph_http = make_async_client(options, meter=meter, up_limiter=up, down_limiter=down)
    supabase_http = make_async_client(options, meter=meter, up_limiter=up, down_limiter=down)
    graph_policy = RetryPolicy(
        clock=clock, max_concurrency=max(8, settings.concurrency_small * 2), on_event=on_policy_event
    )
    download_policy = RetryPolicy(clock=clock, max_concurrency=settings.concurrency_small + settings.concurrency_large,
                                  on_event=on_policy_event)  # fmt: skip
    storage_policy = RetryPolicy(
        clock=clock, max_concurrency=max(8, settings.concurrency_small * 2), on_event=on_policy_event
    )
    session = MsalSession(settings, vault, on_secret=on_secret)
    graph_auth = GraphAuth(session)
    graph = GraphClient(http=graph_http, policy=graph_policy, base_url=settings.effective_graph_url, auth=graph_auth,
                        refresh=graph_auth.force_refresh)  # fmt: skip
    source = GraphSource(DeltaEnumerator(graph), Downloader(graph, policy=download_policy, clock=clock))
    target = SupabaseTarget.from_settings(settings, key)
    uploader = StorageUploader(supabase_http, storage_policy, target, StateTusCheckpoints(state), clock=clock)
    # PostgREST has its own policy: a 503 with Retry-After from the row API must not pause uploads.
    rest_policy = RetryPolicy(
        clock=clock, max_concurrency=max(8, settings.concurrency_small * 2), on_event=on_policy_event
    )
    rest = RestClient(supabase_http, rest_policy, target)
    from celeste_desktop.domain.metadata import MetadataRules

    registrar = Registrar(rest, rules=MetadataRules.from_overrides(settings.metadata_rules or None), clock=clock)
    shore = ShoreStatus(state, rest)
    return Services(
        paths=paths, settings=settings, vault=vault, state=state, session=session, clock=clock, meter=meter,
        usage=usage, graph_auth=graph_auth, graph_http=graph_http, supabase_http=supabase_http, graph=graph,
        source=source, sink=SupabaseSink(uploader, registrar), shore=shore, target=target,
        policies=[graph_policy, download_policy, storage_policy, rest_policy],
    )  # fmt: skip
