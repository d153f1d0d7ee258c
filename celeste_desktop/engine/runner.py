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
import functools
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
from celeste_desktop.engine.offline import LinkBackoff, wait_for_link
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
QUEUE_WINDOW = 64  # actions of one lane started (running or waiting for the lane) at a time
COUNTERS_EVERY_S = 1.0  # History's running counters of a job, refreshed at most this often
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
    offline_backoff: LinkBackoff = field(default_factory=LinkBackoff)  # link re-checks: 5 s doubling to 5 min
    recheck_existing: bool = False


@dataclass(slots=True)
class _Work:
    """A job's planned actions, plan after plan, and which of them wait for which.

    Few actions wait (``waits``: index -> the index of the action it waits for), so only the
    actions waited for get an event (``done``); one ``asyncio.Event`` per action cost ~750
    bytes, 75 MB for 100,000 planned files."""

    actions: list[PlannedAction]
    waits: dict[int, int]
    done: dict[int, asyncio.Event]


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
        self._link_check = asyncio.Event()  # set: re-check the link now, not at the next backoff step
        self._gate_waits: set[asyncio.Future[None]] = set()  # entries waiting for the gate to open
        self._running = False
        self.gate.on_interrupt(lambda reason: self._interrupt())
        self._meter = ThroughputMeter()
        self._file_progress: dict[str, tuple[int, int]] = {}
        self._bytes_total = 0
        self._bytes_completed = 0
        self._files_total = 0
        self._files_completed = 0
        self._counters_saved_at = float("-inf")
        self._changed_during_transfer = 0
        self._budget_reset: asyncio.Task[None] | None = None
        self._warm_up_task: asyncio.Task[None] | None = None

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
        self._link_check.set()  # a wait for the link ends now
        self._interrupt()
        # Waits for a gate that another reason (budget, schedule, Retry-After…) keeps closed
        # end now too: the job ends instead of waiting for that reason to lift.
        for wait in list(self._gate_waits):
            wait.cancel()
        self.gate.lift(PauseReason.USER)

    def _interrupt(self) -> None:
        for task in list(self._in_flight):
            task.cancel()

    def check_budget(self) -> None:
        """Close the gate when the data budget is used up (the byte meter calls this per chunk)."""
        status = self._budget() if self._budget else None
        if status is not None and status.blocks:
            self.gate.close(PauseReason.BUDGET, status.message(), status.seconds_until_resume(self.clock.now()))
            self._await_budget_reset()
        elif PauseReason.BUDGET in self.gate.reasons:
            self.gate.lift(PauseReason.BUDGET)
            timer, self._budget_reset = self._budget_reset, None
            if timer is not None and not timer.done() and timer is not _current_task():
                timer.cancel()  # raised or overridden: no clock wait left to hold a test's fake time

    def _await_budget_reset(self) -> None:
        """Syncing resumes by itself when the plan (or the day) resets: one timer while the budget
        holds the gate, on the injected clock. It outlives a job, as the pause does."""
        if self._budget_reset is not None and not self._budget_reset.done():
            return
        with contextlib.suppress(RuntimeError):  # no running loop: nothing can wait anyway
            self._budget_reset = asyncio.get_running_loop().create_task(self._budget_reset_timer())

    async def _budget_reset_timer(self) -> None:
        while PauseReason.BUDGET in self.gate.reasons:
            status = self._budget() if self._budget else None
            wait = status.seconds_until_resume(self.clock.now()) if status is not None else 0.0
            # In slices of an hour at most, so a PC that slept or a changed clock is caught up.
            await self.clock.sleep(min(wait, 3600.0) + 1.0)
            self.check_budget()

    # -- the job -----------------------------------------------------------------------------

    async def run(self, *, dry_run: bool = False) -> Job:
        if self._running:
            raise CelesteError("A sync is already running.", title="Sync already running")
        self._running = True
        self._cancelled = False
        job = self._start_job(dry_run)
        self._warm_up_task = None
        if not dry_run:
            await self._sweep_spool()
        error: str | None = None
        status = JobStatus.COMPLETED
        watchers = [asyncio.create_task(self._watch_schedule())] if self.config.schedule and not dry_run else []
        try:
            for _pass in range(3):  # follow-up passes only for files that changed mid-transfer
                self._changed_during_transfer = 0
                plans = await self._plan_when_online(job.job_id)
                todo = self._work(plans)
                del plans
                planned_bytes = sum(a.size for a in todo.actions if a.kind is ActionKind.UPLOAD)
                skipped = sum(1 for a in todo.actions if a.kind is ActionKind.SKIP)
                self._emit(JobPlanned(job.job_id, len(todo.actions), planned_bytes, dry_run=dry_run, skipped=skipped))
                self._files_total = len(todo.actions)
                self._bytes_total = planned_bytes
                self._bytes_completed = self._files_completed = 0
                if dry_run:
                    self._dry_run_manifest(job.job_id, todo.actions)
                    break
                if planned_bytes and self._warm_up_task is None:
                    # Supabase's connection and bucket rules while the first files download: on
                    # a satellite link a TLS set-up is two round trips they need not wait for.
                    self._warm_up_task = asyncio.create_task(self._warm_up())
                await self._execute(job.job_id, todo)
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
            if self._warm_up_task is not None:
                self._warm_up_task.cancel()
                await asyncio.gather(self._warm_up_task, return_exceptions=True)
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

    async def _warm_up(self) -> None:
        try:
            await self.destination.prepare()
        except Exception as exc:  # the uploads meet (and report) the same problem themselves
            log.info("could not warm up the storage connection: %s", exc)

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
            items = await asyncio.to_thread(self.state.load_plan_items, drive_id)
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
                items_cache = self.state.load_plan_items(drive_id)  # parents and folders are all it reads
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

    def _work(self, plans: Sequence[Plan]) -> _Work:
        actions: list[PlannedAction] = []
        waits: dict[int, int] = {}
        for plan in plans:
            offset = len(actions)
            actions.extend(plan.actions)
            for index, dep in dependencies(plan).items():
                waits[offset + index] = offset + dep
        return _Work(actions, waits, {dep: asyncio.Event() for dep in waits.values()})

    def _dry_run_manifest(self, job_id: str, actions: Sequence[PlannedAction]) -> None:
        from celeste_desktop.store.records import ManifestRow

        now = self.clock.now()
        outcome = {
            ActionKind.UPLOAD: ManifestOutcome.DELIVERED,
            ActionKind.RELOCATE: ManifestOutcome.RELOCATED,
            ActionKind.REGISTER: ManifestOutcome.DELIVERED,
            ActionKind.DELETE: ManifestOutcome.DELETED,
            ActionKind.SKIP: ManifestOutcome.SKIPPED,
        }
        # A generator: the store writes it a chunk at a time, so 100,000 rows never exist at once.
        rows = (
            ManifestRow(drive_id=a.drive_id, item_id=a.item_id, path=a.display_path, outcome=outcome[a.kind], at=now,
                        size=a.size, storage_key=a.storage_key, reason=f"would {a.kind.value}: {a.reason}")
            for a in actions
        )  # fmt: skip
        self.state.add_manifest_rows(job_id, rows)

    # -- execution ------------------------------------------------------------------------------

    async def _execute(self, job_id: str, todo: _Work) -> None:
        drives = {drive.drive_id: drive for drive in self.state.drives()}
        # The items the actions look up, not the whole index: only drives with something to do
        # beyond skipping, and of those only the planned files.
        busy = {a.drive_id for a in todo.actions if a.kind is not ActionKind.SKIP}
        wanted = {drive_id: [a.item_id for a in todo.actions if a.drive_id == drive_id] for drive_id in busy}
        items = {
            drive_id: await asyncio.to_thread(functools.partial(self.state.load_items, drive_id, only=ids))
            for drive_id, ids in wanted.items()
        }
        del wanted
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
        first = {i for i, a in enumerate(todo.actions) if a.urgent}
        # What an urgent action waits for (a non-urgent DELETE freeing its key) runs with the urgent
        # ones: left to the second phase, it would never start while the urgent action waits.
        for index in list(first):
            dep = todo.waits.get(index)
            while dep is not None and dep not in first:
                first.add(dep)
                dep = todo.waits.get(dep)
        urgent = sorted(first)
        rest = [i for i in range(len(todo.actions)) if i not in first]
        for phase in (urgent, rest):
            if not phase:
                continue
            # One window per lane, in plan order: a task per queued action would cost ~1.5 KB
            # each (150 MB for a first sync of 100,000 files). No deadlock: an action only ever
            # waits for an earlier one, which is already running or done.
            big = [i for i in phase if self._lane_of(todo.actions[i]) == "large"]
            feeders = [
                asyncio.create_task(self._feed(job_id, runner, todo, indices, small, large))
                for indices in (big, [i for i in phase if self._lane_of(todo.actions[i]) == "small"])
                if indices
            ]
            try:
                await asyncio.gather(*feeders)
            finally:
                for feeder in feeders:
                    feeder.cancel()
                await asyncio.gather(*feeders, return_exceptions=True)
            if self._cancelled:
                raise JobCancelled

    def _lane_of(self, action: PlannedAction) -> str:
        large = action.kind is ActionKind.UPLOAD and action.size >= self.config.large_file_bytes
        return "large" if large else "small"

    async def _feed(
        self, job_id: str, runner: ActionRunner, todo: _Work, indices: list[int],
        small: asyncio.Semaphore, large: asyncio.Semaphore,
    ) -> None:  # fmt: skip
        """Run ``indices`` in order with at most `QUEUE_WINDOW` of them started at a time."""
        pending: set[asyncio.Task[None]] = set()
        try:
            for index in indices:
                while len(pending) >= QUEUE_WINDOW:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()  # a fatal error (sign-in, settings) ends the job
                pending.add(asyncio.create_task(self._run_entry(job_id, runner, todo, index, small, large)))
            if pending:
                await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run_entry(
        self, job_id: str, runner: ActionRunner, todo: _Work, index: int,
        small: asyncio.Semaphore, large: asyncio.Semaphore,
    ) -> None:  # fmt: skip
        action = todo.actions[index]
        try:
            dep = todo.waits.get(index)
            if dep is not None:
                await todo.done[dep].wait()
            lane = large if self._lane_of(action) == "large" else small
            while not self._cancelled:
                await self._wait_open()
                if self._cancelled:
                    return
                async with _Slot(lane) as slot:
                    if not self.gate.is_open or self._cancelled:
                        continue
                    self.check_budget()
                    if not self.gate.is_open:
                        continue
                    if action.kind is not ActionKind.SKIP:
                        self._emit(FileStarted(job_id, action.item_id, action.display_path, action.size, action.kind))
                    work = asyncio.create_task(runner.run(action, transferred=slot.release))
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
            done = todo.done.get(index)
            if done is not None:
                done.set()

    async def _offline(self, exc: ServiceUnavailable) -> bool:
        """The link (or a service) is down after every retry: wait for it, re-checking with backoff."""
        if self.config.offline_wait <= 0 and not self.config.wait_for_sign_in:
            return False

        async def probe() -> bool:
            return self._cancelled or self._probe is None or await self._probe()

        self._link_check.clear()
        self.gate.close(PauseReason.OFFLINE, f"{exc.message} Waiting for the connection; the sync continues by itself.")
        try:
            back = await wait_for_link(probe, self.clock, backoff=self.config.offline_backoff,
                                       give_up_after=self.config.offline_wait, wake=self._link_check)  # fmt: skip
        finally:
            self.gate.lift(PauseReason.OFFLINE)
        if self._cancelled:
            raise JobCancelled
        return back

    def check_link_now(self) -> None:
        """Cut the current wait for the link short and check it at once."""
        self._link_check.set()

    async def _plan_when_online(self, job_id: str) -> list[Plan]:
        """Enumerate and plan; with no link (at the start or mid-enumeration) wait for it and go
        on. Delta pages are saved as they come, so the retry continues where the link dropped."""
        while True:
            try:
                return await self._enumerate_and_plan(job_id)
            except ServiceUnavailable as exc:
                if not await self._offline(exc):
                    raise

    async def _wait_open(self) -> None:
        if not self.gate.is_open and not self._cancelled:
            wait = asyncio.ensure_future(self.gate.wait_open())
            self._gate_waits.add(wait)
            try:
                await wait
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not self._cancelled or (current is not None and current.cancelling()):
                    raise  # this task itself is being cancelled, not only its wait
            finally:
                self._gate_waits.discard(wait)
                wait.cancel()
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
        self._save_counters(job_id)

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
        self._save_counters(job_id)

    def _save_counters(self, job_id: str) -> None:
        """The job's counters for History, at most every `COUNTERS_EVERY_S` while it runs.

        The SQL aggregate reads the job's whole manifest, so one per file grows with the square
        of the job (10,000 files: 50 million row visits). The manifest rows stay the truth; the
        job's end (and a resumed job's) writes the exact counters.
        """
        now = self.clock.monotonic()
        if now - self._counters_saved_at < COUNTERS_EVERY_S:
            return
        self._counters_saved_at = now
        self.state.update_job_counters(job_id, self._counters(job_id))

    def _counters(self, job_id: str) -> JobCounters:
        # One SQL aggregate: re-reading the manifest after every file would grow with the
        # square of the job's size.
        return self.state.manifest_counters(job_id)


class _Slot:
    """A place in a lane that the action gives back early: once its bytes have crossed, the next
    file may start while this one registers."""

    def __init__(self, lane: asyncio.Semaphore) -> None:
        self._lane = lane
        self._held = False

    async def __aenter__(self) -> _Slot:
        await self._lane.acquire()
        self._held = True
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lane.release()


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # called outside the loop
        return None


def summarize(counters: JobCounters, status: JobStatus, dry_run: bool) -> str:
    if dry_run:
        return f"Dry run: {counters.files_found} files would be handled; nothing was sent."
    parts = [f"{counters.files_succeeded} done"]
    if counters.files_skipped:
        parts.append(f"{counters.files_skipped} skipped")
    if counters.files_failed:
        parts.append(f"{counters.files_failed} failed")
    return f"Sync {status.value}: " + ", ".join(parts) + f"; {counters.bytes_uploaded / MIB:.1f} MiB copied."
