"""The controller: opens the services on the engine thread, feeds the main window, runs syncs.

It owns the :class:`~celeste_desktop.gui.engine_host.EngineHost`, the window and the flow a
person follows: first run (settings), Connect (sign-in), ticks saved to the state as they
change, Sync now (with a dry-run preview before a large first sync), Pause / Resume / Cancel,
the banner's actions (Sign in again, Sync anyway), periodic background syncs, and the History
and Problems tabs. Every state or Graph call goes through the host, never on the GUI thread.

Dialogs built by other parts of the app come in as :class:`Hooks`, plain async callables, so
tests and the self-test can pass their own. The defaults here are minimal stand-ins.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QWidget

from celeste_desktop.auth.flows import CancelToken
from celeste_desktop.auth.session import Account, MsalSession
from celeste_desktop.auth.vault import Vault
from celeste_desktop.compose import Services
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings, check_ready, load_settings
from celeste_desktop.domain.errors import CelesteError, SignInCancelled
from celeste_desktop.domain.models import FileProblem, FileProblemKind, Job, JobStatus, SelectionEntry
from celeste_desktop.engine.events import JobFinished, Paused, PauseReason, Resumed
from celeste_desktop.engine.offline import LinkBackoff, wait_for_link
from celeste_desktop.engine.runner import SyncEngine
from celeste_desktop.gui.engine_host import EngineHost, HostEvent, HostFolderSource
from celeste_desktop.gui.folder_model import BackgroundTasks
from celeste_desktop.gui.main_window import HeaderState, MainWindow
from celeste_desktop.gui.offline import FolderCache, RememberingFolderSource, needs_network
from celeste_desktop.gui.views.history import ManifestDialog
from celeste_desktop.gui.views.presenter import EventPresenter
from celeste_desktop.gui.views.preview import LARGE_BYTES, LARGE_FILES, PreviewDialog, SyncPreview, preview_of
from celeste_desktop.gui.views.signin import DeviceCodeDialog
from celeste_desktop.net.clock import Clock, SystemClock
from celeste_desktop.store.records import FileState

log = logging.getLogger(__name__)

ConnectFn = Callable[[QWidget, MsalSession], Awaitable[bool]]  # True once signed in
FirstRunFn = Callable[[QWidget], Awaitable[bool]]  # True once the settings file is complete
SettingsFn = Callable[[QWidget], Awaitable[bool]]  # True when settings were changed and saved
NotifyFn = Callable[[str, str], object]  # (title, message) for the tray's notification
VaultFn = Callable[[Settings], Vault]
ERROR_KEY = "error"
NOTICE_PREFIX = "notice:"  # banner notices that only need reading: their button dismisses them
# How long the window waits at start for the first link check before it shows the folders as
# last seen (a dead satellite link may take the whole connect timeout to say so).
FIRST_CHECK_WAIT_S = 1.0
OFFLINE_MESSAGE = (
    "No connection to Microsoft 365 or Supabase. The folders, history and problems are shown as "
    "last seen; the link is checked again by itself, less and less often, and a pending sync "
    "continues when it is back."
)


class Phase(enum.Enum):
    SETUP = "setup"  # settings incomplete
    SIGNED_OUT = "signed_out"
    READY = "ready"


# -- stand-ins until the wizard, the connect dialog and the tray land -------------------------------


async def device_code_connect(parent: QWidget, session: MsalSession) -> bool:
    """Sign in with a code entered on any device; False when cancelled."""
    cancel = CancelToken()
    dialog = DeviceCodeDialog(parent)
    dialog.rejected.connect(cancel.cancel)
    dialog.open()
    try:
        await session.sign_in_with_device_code(dialog.show_code, cancel=cancel)
        return True
    except SignInCancelled:
        return False
    finally:
        dialog.done(QDialog.DialogCode.Accepted)
        dialog.deleteLater()


async def explain_missing_settings(parent: QWidget) -> bool:
    """Until the first-run wizard lands: the header and banner say what to do."""
    return False


def _log_notice(title: str, message: str) -> None:
    log.info("%s: %s", title, message)


def _open_url(url: str) -> bool:
    return QDesktopServices.openUrl(QUrl(url))


@dataclass
class Hooks:
    connect: ConnectFn = device_code_connect
    first_run: FirstRunFn = explain_missing_settings
    open_settings: SettingsFn | None = None
    notify: NotifyFn = _log_notice
    open_url: Callable[[str], bool] = _open_url


@dataclass
class SyncState:
    running: bool = False
    preview_threshold: tuple[int, int] = (LARGE_BYTES, LARGE_FILES)  # (bytes, files) of a "large" sync


class Controller(QObject):
    # (state, text) for the tray: state is "idle", "syncing", "paused", "problem" or "offline"
    # (the values of gui.icons.TrayState); text is one line for its tooltip. Sent on change only.
    status_changed = Signal(str, str)
    running_changed = Signal(bool)
    job_finished = Signal(object)  # the Job, for the notifier
    metered_override = Signal()  # the banner's "Sync anyway" on a metered network

    def __init__(
        self,
        paths: AppPaths,
        vault_for: VaultFn,
        *,
        hooks: Hooks | None = None,
        demo: bool = False,
        clock: Clock | None = None,
        on_secret: Callable[[str], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths
        self.hooks = hooks or Hooks()
        self.demo = demo
        self._vault_for = vault_for
        self._clock = clock
        self._on_secret = on_secret
        self.host = EngineHost(parent=self)
        self.source = RememberingFolderSource(
            HostFolderSource(self.host), FolderCache(paths.cache_dir / "folders"), self.host.blocking
        )
        self.window = MainWindow(self.source, HeaderState(None, None, "Starting…", demo=demo), loop=loop)
        self.settings = Settings()
        self.phase = Phase.SETUP
        self.account: Account | None = None
        self.engine: SyncEngine | None = None
        self.sync = SyncState()
        self.presenter = EventPresenter(self.window)
        self.preview_dialog: PreviewDialog | None = None
        self.manifest_dialog: ManifestDialog | None = None
        self.metered = False
        self._metered_override = False
        self._tasks = BackgroundTasks(loop)
        self._persist_lock = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self._saved_drives: set[str] = set()
        self._has_ticks = False
        self._last_status = ("", "")
        self.link_backoff = LinkBackoff()  # re-checks of a dead link: 5 s doubling to 5 min
        self.offline = False
        self._pending_sync: bool | None = None  # a sync owed when the link is back (True: in the background)
        self._link_tasks = BackgroundTasks(loop)  # apart from _tasks: settled() must not wait for the link
        self._link_task: asyncio.Task[None] | None = None
        self._link_known = asyncio.Event()
        self._link_wake = asyncio.Event()
        self.periodic = QTimer(self)
        self.periodic.timeout.connect(self._periodic_sync)
        self._ticker = QTimer(self)  # transfers leave the list, notices expire
        self._ticker.setInterval(250)
        self._ticker.timeout.connect(self._tick)
        self._wire()

    def _wire(self) -> None:
        window = self.window
        self.host.events.connect(self._on_events)
        window.connect_button.clicked.connect(lambda: self.spawn(self.sign_in()))
        window.settings_button.clicked.connect(lambda: self.spawn(self.open_settings()))
        window.settings_button.setVisible(self.hooks.open_settings is not None)
        window.picker.reload_button.clicked.connect(self._reload_clicked)
        window.sync_button.clicked.connect(lambda: self.spawn(self.sync_now()))
        window.pause_button.clicked.connect(self.pause)
        window.resume_button.clicked.connect(self.resume)
        window.cancel_button.clicked.connect(self.cancel)
        window.banner.action_requested.connect(self._banner_action)
        window.picker.selection_changed.connect(lambda: self.spawn(self.persist_selection()))
        window.history.job_activated.connect(lambda job_id: self.spawn(self.show_manifest(job_id)))
        window.problems.retry_requested.connect(lambda problems: self.spawn(self.retry(problems)))
        window.problems.open_requested.connect(lambda problem: self.hooks.open_url(problem.web_url))

    # -- tasks ------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, object]) -> asyncio.Task[None]:
        """Run ``coro`` for a button; a CelesteError it raises is shown, not lost."""

        async def guarded() -> None:
            try:
                await coro
            except CelesteError as exc:
                self.show_error(exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug, not a condition: the crash dialog (sys.excepthook) shows the report.
                sys.excepthook(*sys.exc_info())

        return self._tasks.spawn(guarded())

    async def settled(self) -> None:
        """Wait until no action started from the window is left (tests, the self-test)."""
        await self._tasks.settled()

    # -- start, settings, sign-in --------------------------------------------------------------------

    async def start(self) -> None:
        self.host.start()
        self._ticker.start()
        settings = await asyncio.to_thread(load_settings, self.paths.settings_file)
        if check_ready(settings):
            self._set_header("Set-up needed")
            if not await self.hooks.first_run(self.window):
                problem = check_ready(await asyncio.to_thread(load_settings, self.paths.settings_file))
                if problem:
                    self.show_error(problem[0])
                    return
            settings = await asyncio.to_thread(load_settings, self.paths.settings_file)
        await self.open(settings)

    async def open(self, settings: Settings) -> None:
        """(Re)open the services for ``settings`` and show who is signed in."""
        self.settings = settings
        self._set_header("Opening…")
        vault = await asyncio.to_thread(self._vault_for, settings)
        services = await self.host.open_services(
            self.paths, settings, vault, clock=self._clock, on_secret=self._on_secret
        )

        async def make_engine() -> SyncEngine:
            return services.engine(self.host.post, wait_for_sign_in=True)

        self.engine = await self.host.run(make_engine)
        if self.metered:
            self.set_metered(True)
        await self._first_link_check(services)
        self.account = await self.host.blocking(services.session.current_account)
        self.phase = Phase.READY if self.account else Phase.SIGNED_OUT
        if self.account is not None:
            await self._signed_in(self.account)
        else:
            self._set_header("Not connected")
            self.window.tree_hint.setText("Press Connect to sign in to Microsoft 365 and choose the folders to copy.")
        await self.refresh_lists()
        # Read-only: ``interrupted_jobs()`` would adopt the job, and the engine would not resume it.
        jobs = await self.host.blocking(services.state.jobs, 10)
        if self.account is not None and any(not job.dry_run and job.status is JobStatus.RUNNING for job in jobs):
            self._owe_sync(background=True)  # a sync a stop interrupted goes on by itself
        self._schedule_periodic()
        keep_collector_short()

    async def sign_in(self) -> bool:
        if self.phase is Phase.SETUP or self.host.services is None:
            await self.start()
            if self.host.services is None:
                return False
        if self.offline:
            self._link_wake.set()
            raise needs_network("Connecting to Microsoft 365", later="Press Connect again when the link is back.")
        services = self.host.require_services()
        if not await self.hooks.connect(self.window, services.session):
            self.window.show_status("Not connected: sign-in was cancelled.", 8000)
            return False
        account = await self.host.blocking(services.session.current_account)
        if account is None:
            return False
        await self._signed_in(account)
        if PauseReason.SIGN_IN in self.presenter.reasons and self.engine is not None:
            self.host.call_soon(self.engine.sign_in_restored)
        return True

    async def _signed_in(self, account: Account) -> None:
        self.account = account
        self.phase = Phase.READY
        state = self.host.require_services().state
        await self.host.blocking(state.set_account, account.username, account.tenant_id or "")
        self._set_header("Connected")
        self.window.tree_hint.setText("Tick the folders to copy; the ticks are saved at once.")
        entries = await self.host.blocking(state.selection)
        self._saved_drives = {entry.drive_id for entry in entries}
        self._has_ticks = any(entry.included for entry in entries)
        self.window.picker.set_selection(entries)
        self.window.picker.load_drives().add_done_callback(lambda _task: self._show_listing_problems())
        self._update_controls()
        self._schedule_periodic()
        keep_collector_short()

    async def open_settings(self) -> None:
        if self.hooks.open_settings is None or not await self.hooks.open_settings(self.window):
            return
        if self.sync.running:
            self.window.show_status("The new settings apply once this sync has finished.", 8000)
            await self._idle.wait()
        await self.open(await asyncio.to_thread(load_settings, self.paths.settings_file))

    # -- selection ----------------------------------------------------------------------------------

    async def persist_selection(self) -> None:
        """Save the ticks per drive (the latest ticks win when changes come quickly)."""
        async with self._persist_lock:
            services = self.host.require_services()
            entries = self.window.picker.selection()
            drives = {drive.drive_id: drive for drive in self.window.picker.drives()}
            by_drive: dict[str, list[SelectionEntry]] = {}
            for entry in entries:
                by_drive.setdefault(entry.drive_id, []).append(entry)
            touched = set(by_drive) | self._saved_drives

            def write() -> None:
                with services.state.batch():
                    for drive_id in touched:
                        if drive_id in drives and by_drive.get(drive_id):
                            services.state.save_drive(drives[drive_id])  # the engine syncs saved drives
                        services.state.set_selection(drive_id, by_drive.get(drive_id, []))

            await self.host.blocking(write)
            self._saved_drives = set(by_drive)
            self._has_ticks = any(entry.included for entry in entries)
            self._update_controls()

    # -- syncing ------------------------------------------------------------------------------------

    async def sync_now(self, *, background: bool = False) -> Job | None:
        """Run one sync; before a large first sync, a dry run and the officer's go-ahead."""
        engine = self.engine
        if self.sync.running or engine is None or self.account is None:
            return None
        if self.offline:
            self._owe_sync(background=background)
            if not background:
                self.window.show_status(
                    needs_network("Syncing", later="The sync starts by itself when the link is back.").message, 10_000
                )
            return None
        self._set_running(True)
        try:
            async with self._persist_lock:  # ticks still being saved belong to this sync
                pass
            first = await self._is_first_sync()
            if first and background:
                return None  # the first sync waits for someone to press Sync now
            if first:
                preview = await self._dry_run(engine)
                max_bytes, max_files = self.sync.preview_threshold
                if preview.is_large(max_bytes=max_bytes, max_files=max_files) and not await self._confirm(preview):
                    self.window.progress.reset("Not synced yet: press Sync now when the link can take it.")
                    return None
            self.window.transfers_model.clear()
            job = await self.host.run(engine.run)
            self.host.drain()  # the job's last events reach the window before sync_now returns
            self.job_finished.emit(job)
            return job
        finally:
            self._set_running(False)
            await self.refresh_lists()

    async def _is_first_sync(self) -> bool:
        jobs = await self.host.blocking(self.host.require_services().state.jobs, 100)
        # An interrupted job (still "running" in the state) was started past the preview already.
        started = (JobStatus.COMPLETED, JobStatus.PARTIAL, JobStatus.RUNNING)
        return not any(not job.dry_run and job.status in started for job in jobs)

    async def _dry_run(self, engine: SyncEngine) -> SyncPreview:
        services = self.host.require_services()
        self.window.progress.reset("Checking what the first sync would copy…")

        async def run() -> SyncPreview:
            before = services.meter.sent + services.meter.received
            started = time.monotonic()
            job = await engine.run(dry_run=True)
            elapsed = time.monotonic() - started
            moved = services.meter.sent + services.meter.received - before
            rows = await asyncio.to_thread(services.state.manifest, job.job_id)
            jobs = await asyncio.to_thread(services.state.jobs, 10)
            budget = await asyncio.to_thread(services.usage.status)
            return preview_of(rows, jobs, moved_bytes=moved, seconds=elapsed, budget=budget)

        return await self.host.run(run)

    async def _confirm(self, preview: SyncPreview) -> bool:
        dialog = PreviewDialog(preview, self.window)
        self.preview_dialog = dialog
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def finished(result: int) -> None:
            if not answer.done():
                answer.set_result(result)

        dialog.finished.connect(finished)
        dialog.open()
        try:
            return await answer == QDialog.DialogCode.Accepted.value
        finally:
            self.preview_dialog = None
            dialog.deleteLater()

    def pause(self) -> None:
        if self.engine is not None and self.sync.running:
            self.host.call_soon(self.engine.pause)

    def resume(self) -> None:
        if self.engine is not None:
            self.host.call_soon(self.engine.resume)

    def cancel(self) -> None:
        if self.engine is not None and self.sync.running:
            self.host.call_soon(self.engine.cancel)

    def set_metered(self, metered: bool) -> None:
        """The network became metered (or not); the metered watcher calls this."""
        self.metered = metered
        engine = self.engine
        if not metered:
            self._metered_override = False
        if engine is None:
            return
        if metered and self.settings.pause_on_metered and not self._metered_override:
            self.host.call_soon(
                engine.gate.close, PauseReason.METERED,
                "This network is metered, so syncing waits. Choose Sync anyway to copy over it.",
            )  # fmt: skip
        else:
            self.host.call_soon(engine.gate.lift, PauseReason.METERED)

    def _show_listing_problems(self) -> None:
        """Parts of the drive list Microsoft refused (SharePoint without Sites.Read.All…)."""
        for number, problem in enumerate(self.source.problems):
            self.window.banner.show_notice(f"{NOTICE_PREFIX}drives{number}", problem.title, problem.message,
                                           action="Dismiss")  # fmt: skip

    def _banner_action(self, key: str) -> None:
        engine = self.engine
        if key == ERROR_KEY or key.startswith(NOTICE_PREFIX):
            self.window.banner.remove(key)
        elif key == PauseReason.USER.value:
            self.resume()
        elif key == PauseReason.SIGN_IN.value:
            self.spawn(self.sign_in())
        elif key == PauseReason.METERED.value and engine is not None:
            self._metered_override = True
            self.host.call_soon(engine.gate.lift, PauseReason.METERED)
            self.metered_override.emit()
        elif key == PauseReason.BUDGET.value and engine is not None:
            usage = self.host.require_services().usage

            def anyway() -> None:
                usage.override = True
                engine.check_budget()

            self.host.call_soon(anyway)

    def _schedule_periodic(self) -> None:
        minutes = self.settings.sync_interval_minutes
        if minutes <= 0 or self.account is None:
            self.periodic.stop()
            return
        self.periodic.start(minutes * 60_000)

    def _periodic_sync(self) -> None:
        if not self.sync.running:
            self.spawn(self.sync_now(background=True))

    # -- the link -----------------------------------------------------------------------------------

    async def _first_link_check(self, services: Services) -> None:
        """Start watching the link; the tree answers from memory until the first check has
        answered, and the window waits for that answer only briefly."""
        self._stop_link_watch()
        self._link_known.clear()
        self.source.cache_first = True
        self._ensure_link_watch()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._link_known.wait(), FIRST_CHECK_WAIT_S)

    async def _watch_link(self, services: Services) -> None:
        """Check the link now; while it is down, again with backoff (never while a sync runs:
        the engine checks it then). Then go online and start the sync that is owed."""

        async def probe() -> bool:
            await self._idle.wait()
            try:
                return await self.host.run(services.probe)
            except Exception:
                return False

        clock = self._clock or SystemClock()
        try:
            if not await probe():
                self._went_offline()
                self._link_known.set()
                await wait_for_link(probe, clock, backoff=self.link_backoff, wake=self._link_wake)
            self._link_back()
        finally:
            self._link_known.set()

    def _ensure_link_watch(self) -> None:
        services = self.host.services
        if services is not None and (self._link_task is None or self._link_task.done()):
            self._link_task = self._link_tasks.spawn(self._watch_link(services))

    def _stop_link_watch(self) -> None:
        if self._link_task is not None:
            self._link_task.cancel()
            self._link_task = None

    def _went_offline(self) -> None:
        self.offline = self.source.offline = True
        self.source.cache_first = False
        if PauseReason.OFFLINE not in self.presenter.reasons:
            self.presenter.reasons[PauseReason.OFFLINE] = OFFLINE_MESSAGE
            self.window.banner.show_pause(PauseReason.OFFLINE, OFFLINE_MESSAGE)
        self._update_controls()

    def _link_back(self) -> None:
        was_offline = self.offline
        self.offline = self.source.offline = self.source.cache_first = False
        if self.presenter.reasons.pop(PauseReason.OFFLINE, None) is not None:
            self.window.banner.lift(PauseReason.OFFLINE)
        if self.source.served_from_cache and self.account is not None:
            self.source.served_from_cache = False
            self.window.picker.reload()  # the live folders replace the remembered ones, ticks kept
        if was_offline:
            self.window.show_status("Back online.", 8000)
        owed, self._pending_sync = self._pending_sync, None
        if owed is not None and self.account is not None:
            self.spawn(self.sync_now(background=owed))
        self._update_controls()

    def _owe_sync(self, *, background: bool) -> None:
        """Remember a sync to start when the link is back (a click outranks a background one)."""
        self._pending_sync = background and self._pending_sync is not False
        if not self.offline and self._link_known.is_set() and self._link_task is not None and self._link_task.done():
            owed, self._pending_sync = self._pending_sync, None
            self.spawn(self.sync_now(background=owed))

    def _reload_clicked(self) -> None:
        if self.offline:
            self._link_wake.set()
            self.window.show_status(
                needs_network("Reloading the folder tree", later="The folders are shown as last seen.").message, 10_000
            )

    # -- events -------------------------------------------------------------------------------------

    def _on_events(self, batch: list[HostEvent]) -> None:
        self.presenter.apply(batch, time.monotonic())
        for event in batch:
            if isinstance(event, Paused) and event.reason is PauseReason.SIGN_IN:
                self.hooks.notify("Sign in again", event.message)
            elif isinstance(event, Paused) and event.reason is PauseReason.OFFLINE:
                self._went_offline()  # the tree answers from memory meanwhile
                self._ensure_link_watch()  # it checks once this sync has ended (cancelled, say)
            elif isinstance(event, Resumed) and event.reason is PauseReason.OFFLINE:
                self._stop_link_watch()  # the engine saw the link come back: the window follows
                self._link_back()
            elif isinstance(event, JobFinished) and not self.presenter.is_dry_run(event.job_id):
                self.spawn(self.refresh_lists())  # the summary and the tabs come from the state
        self._update_controls()

    def _tick(self) -> None:
        now = time.monotonic()
        self.window.transfers_model.sweep(now)
        self.window.banner.expire(now)

    # -- history, problems ------------------------------------------------------------------------------

    async def refresh_lists(self) -> None:
        services = self.host.services
        if services is None:
            return
        jobs = await self.host.blocking(services.state.jobs, 50)
        problems = await self.host.blocking(services.state.problems)
        self.window.history.set_jobs(jobs)
        self.window.problems.set_problems(problems)
        self.window.set_problem_count(sum(1 for p in problems if p.kind is not FileProblemKind.NOTE))
        last = next((job for job in jobs if not job.dry_run and job.status is not JobStatus.RUNNING), None)
        if not self.sync.running:
            self.window.summary.set_job(last)

    async def retry(self, problems: Sequence[FileProblem]) -> None:
        """Put failed or parked files back in line: the next sync sends them."""
        state = self.host.require_services().state

        def reset() -> None:
            for problem in problems:
                if problem.kind is FileProblemKind.DEAD_LETTER:
                    state.reset_dead_letter(problem.drive_id, problem.item_id)
                elif problem.kind is FileProblemKind.FAILED:
                    state.set_file_state(problem.drive_id, problem.item_id, FileState.PENDING)
                    state.clear_problem(problem.drive_id, problem.item_id)

        await self.host.blocking(reset)
        await self.refresh_lists()
        self.window.show_status(f"{len(problems)} file(s) will be sent with the next sync.", 8000)

    async def show_manifest(self, job_id: str) -> None:
        state = self.host.require_services().state
        job = await self.host.blocking(state.job, job_id)
        rows = await self.host.blocking(state.manifest, job_id)
        if self.manifest_dialog is not None:
            self.manifest_dialog.close()
        self.manifest_dialog = ManifestDialog(job, rows, self.window)
        self.manifest_dialog.show()

    # -- showing ------------------------------------------------------------------------------------

    def show_error(self, exc: CelesteError) -> None:
        log.warning("%s: %s", exc.title, exc.message)
        self.window.banner.show_notice(ERROR_KEY, exc.title, str(exc), action="Dismiss", warning=True)

    def _set_header(self, connection: str) -> None:
        self.window.set_header(HeaderState(
            self.account.username if self.account else None, self.settings.yacht_id or None,
            self.presenter.connection("Offline — waiting for the connection" if self.offline else connection),
            demo=self.demo, signed_in=self.account is not None,
        ))  # fmt: skip

    def _set_running(self, running: bool) -> None:
        self.sync.running = running
        (self._idle.clear if running else self._idle.set)()
        self.running_changed.emit(running)
        self._update_controls()

    def _update_controls(self) -> None:
        ticked = self._has_ticks
        why = "" if self.account else "Connect to Microsoft 365 first."
        if self.account and not ticked:
            why = "Tick at least one folder to copy."
        paused = PauseReason.USER in self.presenter.reasons
        self.window.set_sync_controls(
            running=self.sync.running, paused=paused, can_sync=bool(self.account and ticked), why_not=why
        )
        if self.phase is not Phase.SETUP:
            self._set_header("Connected" if self.account else "Not connected")
        status = self.presenter.status(running=self.sync.running, signed_in=self.account is not None)
        if status != self._last_status:
            self._last_status = status
            self.status_changed.emit(*status)

    # -- the end ------------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop timers and tasks, close the services, stop the engine thread. A sync in flight is
        interrupted, not cancelled: the next start resumes it."""
        self.periodic.stop()
        self._ticker.stop()
        self._stop_link_watch()
        self.window.picker.shutdown()
        self._tasks.cancel_all()
        with contextlib.suppress(Exception):
            await self._tasks.settled()
        with contextlib.suppress(Exception):
            await self.host.close_services()
        self.host.stop()


def keep_collector_short() -> None:
    """Move what start-up built (Qt wrappers, clients, MSAL, the demo's simulators) out of the
    cyclic collector's reach. A full collection walks every tracked object while holding the
    GIL, which stalls the window with it: 100-200 ms once the app is up. What is frozen here
    lives as long as the app anyway. Collecting first keeps garbage out of it; that walks only
    what is not frozen yet, so it is slow only the first time, while the window opens."""
    gc.collect()
    gc.freeze()
