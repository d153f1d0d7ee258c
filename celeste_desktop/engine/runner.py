"""One sync job: enumerate the selection through delta, plan, and carry the plan out.

Transfers run in two lanes (small files first and many at once; large files few at a time),
urgent folders' files strictly before all others, each action after the ones the planner says
it depends on. The gate (``engine.control``) pauses everything at any instant: in-flight
transfers are interrupted and resume from their checkpoints when it opens again.

A job killed outright is found "running" at the next start and resumed under the same id, so
its counters (derived from its manifest, one row per file) stay right.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from celeste_desktop.domain.errors import (
    AuthError,
    CelesteError,
    ConfigError,
    ServiceUnavailable,
    SignInRequired,
    SourceChanged,
    VaultError,
)
from celeste_desktop.domain.models import (
    ActionKind,
    Drive,
    Job,
    JobCounters,
    JobStatus,
    Plan,
    PlannedAction,
    RemoteItem,
)
from celeste_desktop.domain.rules import SkipPatterns
from celeste_desktop.engine.actions import ActionContext, ActionRunner, Outcome, sweep_spool
from celeste_desktop.engine.budget import BudgetStatus
from celeste_desktop.engine.control import Gate
from celeste_desktop.engine.events import (
    EnumerationProgress,
    Event,
    FileDone,
    FileFailed,
    FileStarted,
    JobFinished,
    JobPlanned,
    PauseReason,
    Throughput,
    ThroughputMeter,
)
from celeste_desktop.engine.planner import dependencies, plan_sync
from celeste_desktop.engine.ports import Destination, ShoreReporter, Source
from celeste_desktop.engine.schedule import Window, describe, schedule_state
from celeste_desktop.graph.delta import DeltaMode, DeltaPage
from celeste_desktop.net.clock import Clock
from celeste_desktop.storage.errors import FileNotAccepted, FileTooLarge
from celeste_desktop.store.db import StateDB
from celeste_desktop.store.records import FileState, ManifestOutcome

log = logging.getLogger(__name__)

MIB = 1024 * 1024
# A renamed ancestor of a selected folder is not reported by folder delta: re-read the selected
# folders' ancestors this often, instead of one request per folder on every run over the link.
ANCHOR_CHECK_S = 6 * 3600
# Permanent per-file problems: retrying cannot help until something changes.
PERMANENT = (FileTooLarge, FileNotAccepted)


@dataclass
class EngineConfig:
    yacht_id: str
    spool_dir: Path
    concurrency_small: int = 4
    concurrency_large: int = 2
    large_file_bytes: int = 8 * MIB
    max_attempts: int = 10
    max_file_size: int | None = None
    skip_patterns: SkipPatterns | None = None
    delete_objects_on_remove: bool = False
    schedule: tuple[Window, ...] = ()
    account_upn: str = ""
    account_tenant: str = ""
    # The GUI waits for "Sign in again" and for the link to come back; an unattended CLI run
    # gives up after ``offline_wait`` seconds (0: at once) and reports it in its exit code.
    wait_for_sign_in: bool = False
    offline_wait: float = 0.0
    recheck_existing: bool = False


@dataclass
class _Entry:
    action: PlannedAction
    deps: list[int] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class JobCancelled(Exception):
    """Raised inside the job when the officer cancels it."""


class SyncEngine:
    """Runs sync jobs; ``pause``/``resume``/``cancel`` may be called from the same loop at any time."""

    def __init__(
        self,
        *,
        state: StateDB,
        source: Source,
        destination: Destination,
        config: EngineConfig,
        clock: Clock,
        emit: Callable[[Event], None],
        shore: ShoreReporter | None = None,
        budget: Callable[[], BudgetStatus | None] | None = None,
        probe: Callable[[], Awaitable[bool]] | None = None,
        local_now: Callable[[], datetime] | None = None,
    ) -> None:
        self.state = state
        self.source = source
        self.destination = destination
        self.config = config
        self.clock = clock
        self._emit = emit
        self.shore = shore
        self._budget = budget
        self._probe = probe
        self._local_now = local_now or (lambda: datetime.now().astimezone())
        self.gate = Gate(emit)
        self._in_flight: set[asyncio.Task[object]] = set()
        self._cancelled = False
        self._running = False
        self.gate.on_interrupt(lambda reason: self._interrupt())
        self._meter = ThroughputMeter()
        self._file_progress: dict[str, tuple[int, int]] = {}
        self._bytes_total = 0
        self._bytes_completed = 0
        self._files_total = 0
        self._files_completed = 0
        self._changed_during_transfer = 0

    # -- control -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def pause(self) -> None:
        self.gate.close(PauseReason.USER, "Paused by you. Press Resume to continue where it stopped.")

    def resume(self) -> None:
        self.gate.lift(PauseReason.USER)

    def sign_in_restored(self) -> None:
        self.gate.lift(PauseReason.SIGN_IN)

    def cancel(self) -> None:
        self._cancelled = True
        self._interrupt()
        self.gate.lift(PauseReason.USER)

    def _interrupt(self) -> None:
        for task in list(self._in_flight):
            task.cancel()

    def check_budget(self) -> None:
        """Close the gate when the data budget is used up (the byte meter calls this per chunk)."""
        status = self._budget() if self._budget else None
        if status is not None and status.blocks:
            self.gate.close(PauseReason.BUDGET, status.message())
        elif PauseReason.BUDGET in self.gate.reasons:
            self.gate.lift(PauseReason.BUDGET)

    # -- the job -----------------------------------------------------------------------------

    async def run(self, *, dry_run: bool = False) -> Job:
        if self._running:
            raise CelesteError("A sync is already running.", title="Sync already running")
        self._running = True
        self._cancelled = False
        job = self._start_job(dry_run)
        if not dry_run:
            await self._sweep_spool()
        error: str | None = None
        status = JobStatus.COMPLETED
        watchers = [asyncio.create_task(self._watch_schedule())] if self.config.schedule and not dry_run else []
        try:
            for _pass in range(3):  # follow-up passes only for files that changed mid-transfer
                self._changed_during_transfer = 0
                plans = await self._enumerate_and_plan(job.job_id)
                entries = self._entries(plans)
                planned_bytes = sum(e.action.size for e in entries if e.action.kind is ActionKind.UPLOAD)
                skipped = sum(1 for e in entries if e.action.kind is ActionKind.SKIP)
                self._emit(JobPlanned(job.job_id, len(entries), planned_bytes, dry_run=dry_run, skipped=skipped))
                self._files_total = len(entries)
                self._bytes_total = planned_bytes
                self._bytes_completed = self._files_completed = 0
                if dry_run:
                    self._dry_run_manifest(job.job_id, entries)
                    break
                await self._execute(job.job_id, entries)
                if not self._changed_during_transfer:
                    break
        except JobCancelled:
            status, error = JobStatus.CANCELLED, "Cancelled by you; the next sync continues where this one stopped."
        except (ConfigError, AuthError, VaultError) as exc:
            status, error = JobStatus.FAILED, f"{exc.title}: {exc.message}"
        except ServiceUnavailable as exc:
            status, error = JobStatus.FAILED, f"{exc.title}: {exc.message}"
        except CelesteError as exc:
            status, error = JobStatus.FAILED, f"{exc.title}: {exc.message}"
        finally:
            for watcher in watchers:
                watcher.cancel()
            self._running = False
        counters = self._counters(job.job_id)
        if status is JobStatus.COMPLETED and counters.files_failed:
            status = JobStatus.PARTIAL
        self.state.update_job_counters(job.job_id, counters)
        finished = self.state.finish_job(job.job_id, status, error)
        if self.shore is not None and self.config.account_upn and not dry_run:
            with contextlib.suppress(Exception):
                self.shore.job(self.config.account_upn, finished)
                await self.shore.flush()
        self._emit(JobFinished(job.job_id, status, counters, summarize(counters, status, dry_run), error))
        return finished

    def _start_job(self, dry_run: bool) -> Job:
        if not dry_run:
            for interrupted in self.state.interrupted_jobs():
                if not interrupted.dry_run:
                    log.info("resuming job %s interrupted by a stop", interrupted.job_id)
                    return self.state.resume_job(interrupted.job_id)
        return self.state.start_job(str(uuid.uuid4()), dry_run=dry_run)

    async def _sweep_spool(self) -> None:
        owned = {checkpoint.spool_path for checkpoint in self.state.checkpoints()}
        removed = await asyncio.to_thread(sweep_spool, self.config.spool_dir, owned)
        if removed:
            log.info("removed %d spool files left by an interrupted run", removed)

    # -- enumeration and planning --------------------------------------------------------------

    async def _enumerate_and_plan(self, job_id: str) -> list[Plan]:
        plans: list[Plan] = []
        drives = {drive.drive_id: drive for drive in self.state.drives()}
        for drive_id, drive in drives.items():
            selection = self.state.selection(drive_id)
            included = [entry for entry in selection if entry.included]
            if not included:
                continue
            await self._wait_open()
            await self._enumerate(drive, [entry.item_id for entry in included])
            items = await asyncio.to_thread(self.state.load_items, drive_id)
            plan = await asyncio.to_thread(
                plan_sync,
                yacht_id=self.config.yacht_id,
                items=items,
                selection=selection,
                delivered=self.state.delivered(drive_id),
                patterns=self.config.skip_patterns,
                max_file_size=self.config.max_file_size,
            )
            plans.append(self._without_parked(plan))
        return plans

    async def _enumerate(self, drive: Drive, roots: Sequence[str]) -> None:
        drive_id = drive.drive_id
        seen = 0

        async def save(page: DeltaPage) -> None:
            nonlocal seen
            await asyncio.to_thread(
                self.state.save_delta_page, drive_id, page.scope_item_id, page.changes,
                next_link=page.next_link, delta_link=page.delta_link,
            )  # fmt: skip
            seen += len(page.changes)
            self._emit(EnumerationProgress(drive.name, seen))

        items_cache: dict[str, RemoteItem] | None = None

        def index() -> dict[str, RemoteItem]:
            nonlocal items_cache
            if items_cache is None:
                items_cache = self.state.load_items(drive_id)
            return items_cache

        def known_under(scopes: Sequence[str]) -> Callable[[], set[str]]:
            def known() -> set[str]:
                items = index()
                wanted = set(scopes)
                found: set[str] = set()
                for item_id in items:
                    current: str | None = item_id
                    while current is not None and current in items:
                        if current in wanted:
                            found.add(item_id)
                            break
                        current = items[current].parent_id
                return found

            return known

        folders = {i.item_id: i.parent_id for i in index().values() if i.is_folder}
        mode = self.state.delta_mode(drive_id)
        if mode is DeltaMode.ROOT:
            cursor = self.state.delta_cursor(drive_id, "")
            await self.source.enumerate(
                drive_id, None, cursor=cursor, save_page=save, mode=DeltaMode.ROOT, selection=roots,
                known_ids=known_under(roots), known_folders=folders,
            )  # fmt: skip
            return
        for root in roots:
            cursor = self.state.delta_cursor(drive_id, root)
            check_key = f"anchors_checked:{drive_id}:{root}"
            checked = self.state.get_meta(check_key)
            now = self.clock.now()
            due = checked is None or (now - datetime.fromisoformat(checked)).total_seconds() >= ANCHOR_CHECK_S
            result = await self.source.enumerate(
                drive_id, root, cursor=cursor, save_page=save, mode=DeltaMode.FOLDER, selection=roots,
                known_ids=known_under([root]), known_folders=folders, check_anchors=due,
            )  # fmt: skip
            if due:
                self.state.set_meta(check_key, now.isoformat())
            if result.fell_back:
                # Remember the choice: one filtered root delta now serves every selected folder.
                self.state.set_delta_mode(drive_id, DeltaMode.ROOT)
                return

    def _without_parked(self, plan: Plan) -> Plan:
        """Dead letters wait for a reset, and failed files for their retry time."""
        now = self.clock.now()
        due = {(p.drive_id, p.item_id) for p in self.state.due_retries(now)}
        # One query per drive, not one per file: a query per planned file starves the GUI thread.
        states = {drive_id: self.state.file_states(drive_id) for drive_id in {a.drive_id for a in plan.actions}}
        kept: list[PlannedAction] = []
        for action in plan.actions:
            if action.kind is ActionKind.UPLOAD:
                state = states[action.drive_id].get(action.item_id)
                if state is FileState.DEAD:
                    continue
                if state is FileState.FAILED and (action.drive_id, action.item_id) not in due:
                    continue
            kept.append(action)
        return Plan(tuple(kept))

    def _entries(self, plans: Sequence[Plan]) -> list[_Entry]:
        entries: list[_Entry] = []
        for plan in plans:
            offset = len(entries)
            local = [_Entry(action) for action in plan.actions]
            for index, dep in dependencies(plan).items():
                local[index].deps.append(offset + dep)
            entries.extend(local)
        return entries

    def _dry_run_manifest(self, job_id: str, entries: Sequence[_Entry]) -> None:
        from celeste_desktop.store.records import ManifestRow

        now = self.clock.now()
        outcome = {
            ActionKind.UPLOAD: ManifestOutcome.DELIVERED,
            ActionKind.RELOCATE: ManifestOutcome.RELOCATED,
            ActionKind.REGISTER: ManifestOutcome.DELIVERED,
            ActionKind.DELETE: ManifestOutcome.DELETED,
            ActionKind.SKIP: ManifestOutcome.SKIPPED,
        }
        rows = [
            ManifestRow(drive_id=e.action.drive_id, item_id=e.action.item_id, path=e.action.display_path,
                        outcome=outcome[e.action.kind], at=now, size=e.action.size,
                        storage_key=e.action.storage_key, reason=f"would {e.action.kind.value}: {e.action.reason}")
            for e in entries
        ]  # fmt: skip
        self.state.add_manifest_rows(job_id, rows)

    # -- execution ------------------------------------------------------------------------------

    async def _execute(self, job_id: str, entries: list[_Entry]) -> None:
        drives = {drive.drive_id: drive for drive in self.state.drives()}
        items = {
            drive_id: await asyncio.to_thread(self.state.load_items, drive_id)
            for drive_id in {e.action.drive_id for e in entries if e.action.kind is not ActionKind.SKIP}
        }
        context = ActionContext(
            job_id=job_id, yacht_id=self.config.yacht_id, state=self.state, source=self.source,
            destination=self.destination, clock=self.clock, emit=self._emit, spool_dir=self.config.spool_dir,
            drives=drives, items=items, shore=self.shore, account_upn=self.config.account_upn,
            delete_objects_on_remove=self.config.delete_objects_on_remove,
            recheck_existing=self.config.recheck_existing, progress=self._on_progress,
        )  # fmt: skip
        runner = ActionRunner(context)
        small = asyncio.Semaphore(self.config.concurrency_small)
        large = asyncio.Semaphore(self.config.concurrency_large)
        urgent = [i for i, e in enumerate(entries) if e.action.urgent]
        rest = [i for i, e in enumerate(entries) if not e.action.urgent]
        for phase in (urgent, rest):
            if not phase:
                continue
            tasks = [asyncio.create_task(self._run_entry(job_id, runner, entries, i, small, large)) for i in phase]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if self._cancelled:
                raise JobCancelled

    async def _run_entry(
        self, job_id: str, runner: ActionRunner, entries: list[_Entry], index: int,
        small: asyncio.Semaphore, large: asyncio.Semaphore,
    ) -> None:  # fmt: skip
        entry = entries[index]
        action = entry.action
        try:
            for dep in entry.deps:
                await entries[dep].done.wait()
            lane = large if action.kind is ActionKind.UPLOAD and action.size >= self.config.large_file_bytes else small
            while not self._cancelled:
                await self._wait_open()
                if self._cancelled:
                    return
                async with lane:
                    if not self.gate.is_open or self._cancelled:
                        continue
                    self.check_budget()
                    if not self.gate.is_open:
                        continue
                    if action.kind is not ActionKind.SKIP:
                        self._emit(FileStarted(job_id, action.item_id, action.display_path, action.size, action.kind))
                    work = asyncio.create_task(runner.run(action))
                    self._in_flight.add(work)
                    try:
                        result = await work
                    except asyncio.CancelledError:
                        current = asyncio.current_task()
                        if current is not None and current.cancelling():
                            raise
                        continue  # interrupted by a pause: go round and wait for the gate
                    except SignInRequired as exc:
                        if not self.config.wait_for_sign_in:
                            raise
                        self.gate.close(
                            PauseReason.SIGN_IN, f"{exc.message} The sync continues after you sign in again."
                        )
                        continue
                    except ServiceUnavailable as exc:
                        if await self._offline(exc):
                            continue
                        raise
                    except SourceChanged:
                        # Never a mix of old and new bytes: the file is listed again and sent in a
                        # follow-up pass of this job.
                        self.state.clear_checkpoint(action.drive_id, action.item_id)
                        self._changed_during_transfer += 1
                        return
                    except PERMANENT as exc:
                        self._failed(job_id, action, exc, permanent=True)
                        return
                    except (ConfigError, AuthError, VaultError):
                        raise
                    except CelesteError as exc:
                        self._failed(job_id, action, exc, permanent=False)
                        return
                    finally:
                        self._in_flight.discard(work)
                self._completed(job_id, action, result.outcome, result.bytes_uploaded, result.note)
                return
        finally:
            entry.done.set()

    async def _offline(self, exc: ServiceUnavailable) -> bool:
        """The link (or a service) is down after every retry: wait for it, re-checking with backoff."""
        if self.config.offline_wait <= 0 and not self.config.wait_for_sign_in:
            return False
        self.gate.close(PauseReason.OFFLINE, f"{exc.message} Waiting for the connection; the sync continues by itself.")
        waited = 0.0
        delay = 5.0
        try:
            while self.config.offline_wait <= 0 or waited < self.config.offline_wait:
                await self.clock.sleep(delay)
                waited += delay
                if self._probe is None or await self._probe():
                    return True
                delay = min(delay * 2, 300.0)
            return False
        finally:
            self.gate.lift(PauseReason.OFFLINE)

    async def _wait_open(self) -> None:
        await self.gate.wait_open()
        if self._cancelled:
            raise JobCancelled

    async def _watch_schedule(self) -> None:
        while True:
            state = schedule_state(self._local_now(), self.config.schedule)
            if state.allowed:
                self.gate.lift(PauseReason.SCHEDULE)
            else:
                wait = state.seconds_until_change(self._local_now())
                self.gate.close(
                    PauseReason.SCHEDULE,
                    f"Outside the sync schedule ({describe(self.config.schedule)}); continues at "
                    f"{state.next_change:%H:%M}."
                    if state.next_change
                    else "Outside the sync schedule.",
                    wait,
                )
            pause = state.seconds_until_change(self._local_now())
            await self.clock.sleep(min(pause if pause is not None else 3600.0, 3600.0) + 0.5)

    # -- bookkeeping ----------------------------------------------------------------------------

    def _on_progress(self, item_id: str, down: int, up: int) -> None:
        self._file_progress[item_id] = (down, up)
        in_flight = sum((d + u) // 2 for d, u in self._file_progress.values())
        done = self._bytes_completed + in_flight
        now = self.clock.monotonic()
        self._meter.add(max(0, done - getattr(self, "_last_done", 0)), now)
        self._last_done = done
        self._emit(Throughput("", self._files_completed, self._files_total, done, self._bytes_total,
                              self._meter.rate, self._meter.eta(self._bytes_total - done)))  # fmt: skip

    def _completed(self, job_id: str, action: PlannedAction, outcome: Outcome, bytes_up: int, note: str) -> None:
        self._file_progress.pop(action.item_id, None)
        self._files_completed += 1
        if action.kind is ActionKind.UPLOAD:
            self._bytes_completed += action.size
        if outcome is not Outcome.SKIPPED:
            self._emit(FileDone(job_id, action.item_id, action.display_path, action.kind, bytes_up, note))
        self.state.update_job_counters(job_id, self._counters(job_id))

    def _failed(self, job_id: str, action: PlannedAction, exc: CelesteError, *, permanent: bool) -> None:
        self._file_progress.pop(action.item_id, None)
        self._files_completed += 1
        item = None
        message = exc.message if exc.path else f"{exc.message}"
        from celeste_desktop.store.records import ManifestRow

        # The manifest row first (see engine.actions): a kill before the failure is recorded
        # leaves the file to be tried again, not a failure missing from the job's counters.
        self.state.add_manifest_rows(job_id, [ManifestRow(
            drive_id=action.drive_id, item_id=action.item_id, path=action.display_path,
            outcome=ManifestOutcome.FAILED, at=self.clock.now(), size=action.size, reason=message,
        )])  # fmt: skip
        problem = self.state.record_failure(
            action.drive_id, action.item_id, message, now=self.clock.now(), path=action.display_path,
            code=type(exc).__name__, web_url=item, max_attempts=1 if permanent else self.config.max_attempts,
        )  # fmt: skip
        dead = problem.kind.value == "dead_letter"
        self._emit(
            FileFailed(job_id, action.item_id, action.display_path, message, will_retry=not dead, dead_letter=dead)
        )
        self.state.update_job_counters(job_id, self._counters(job_id))

    def _counters(self, job_id: str) -> JobCounters:
        # One SQL aggregate: re-reading the manifest after every file would grow with the
        # square of the job's size.
        return self.state.manifest_counters(job_id)


def summarize(counters: JobCounters, status: JobStatus, dry_run: bool) -> str:
    if dry_run:
        return f"Dry run: {counters.files_found} files would be handled; nothing was sent."
    parts = [f"{counters.files_succeeded} done"]
    if counters.files_skipped:
        parts.append(f"{counters.files_skipped} skipped")
    if counters.files_failed:
        parts.append(f"{counters.files_failed} failed")
    return f"Sync {status.value}: " + ", ".join(parts) + f"; {counters.bytes_uploaded / MIB:.1f} MiB copied."
