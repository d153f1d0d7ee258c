"""``celeste-desktop --demo --self-test``: the real window, driven through a whole sync against
the in-process simulators, checked against what the simulators stored.

Steps: first run (settings from the simulator), Connect (device code, auto-approved by the
simulated Entra ID), tick ``01_BRIDGE`` and ``04_MANUALS`` through the folder model, sync on a
slowed link with the progress bar moving, Pause (transfers stop) and Resume (they continue),
the OneNote and malware skips in the Problems tab, a second sync with nothing to do, and no
clipped text. Each step prints ``PASS``/``FAIL`` with a reason; the exit code is 0 only when
every step passed. Success is judged from the simulators' stored objects and rows and their
traffic counters, never from the window's own labels.

``CELESTE_SELF_TEST_SCREENSHOTS=DIR`` also saves screenshots of the window to DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QMessageLogContext, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QLabel, QWidget

from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import check_ready, load_settings
from celeste_desktop.domain.models import FileProblemKind, JobStatus
from celeste_desktop.engine.events import PauseReason
from celeste_desktop.gui.controller import Controller, Hooks
from celeste_desktop.gui.main_window import MainWindow
from celeste_desktop.sim.faults import LinkShaper
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.sim.tenant_model import FILE, FOLDER, ROOT
from celeste_desktop.store.db import open_state
from celeste_desktop.support.logs import Redactor, configure_logging

TOPS = ("01_BRIDGE", "04_MANUALS")
LINK_BYTES_PER_S = 400_000  # slow enough that Pause lands mid-sync, fast enough for CI
STEP_TIMEOUT_S = 40.0
SCREENSHOTS_ENV = "CELESTE_SELF_TEST_SCREENSHOTS"


class StepFailed(Exception):
    """A step did not really happen; the message says what was seen instead."""


async def wait_until(condition: Callable[[], bool], what: str, seconds: float = STEP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def clipped_labels(root: QWidget) -> list[str]:
    """Visible labels whose text does not fit the space the layout gave them."""
    found: list[str] = []
    for label in root.findChildren(QLabel):
        if not label.isVisibleTo(root) or not label.text():
            continue
        if label.wordWrap():
            needed = label.heightForWidth(label.width())
            if needed > label.height() + 1:
                name = label.accessibleName() or label.text()[:40]
                found.append(f"{name!r} needs {needed} px high, has {label.height()}")
        elif label.sizeHint().width() > label.width() + 1:
            found.append(
                f"{label.accessibleName() or label.text()[:40]!r} needs {label.sizeHint().width()} px wide, "
                f"has {label.width()}"
            )
    return found


def clipped_in_any_tab(window: MainWindow) -> list[str]:
    """``clipped_labels`` with each tab of the window shown in turn."""
    found: list[str] = []
    current = window.tabs.currentIndex()
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        QCoreApplication.processEvents()
        found += [f"{window.tabs.tabText(index).replace('&', '')}: {text}" for text in clipped_labels(window)]
    window.tabs.setCurrentIndex(current)
    return found


def save_screenshot(widget: QWidget, directory: Path, name: str) -> Path:
    """``name.png`` at 100 % scaling, ``name-150.png`` at 150 % (QT_SCALE_FACTOR)."""
    scale = os.environ.get("QT_SCALE_FACTOR", "1")
    suffix = "" if scale in ("", "1", "1.0") else f"-{round(float(scale) * 100)}"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}{suffix}.png"
    for _ in range(3):  # let pending relayouts (a new text, another tab) happen before the grab
        QCoreApplication.processEvents()
    widget.grab().save(str(target))
    return target


class SelfTest:
    def __init__(self, stack: SimStack, paths: AppPaths, controller: Controller, screenshots: Path | None) -> None:
        self.stack = stack
        self.paths = paths
        self.controller = controller
        self.window = controller.window
        self.screenshots = screenshots
        self.bucket = "documents"
        self.bar_values: list[int] = []
        self.window.progress.bytes_bar.valueChanged.connect(self.bar_values.append)

    # -- what the simulated tenant holds -------------------------------------------------------------

    def tenant_files(self) -> tuple[dict[str, str], set[str]]:
        """Path -> item id of every copyable file under TOPS, and the ids of those skipped by rule."""
        tenant = self.stack.graph.tenant
        expected: dict[str, str] = {}
        skipped: set[str] = set()
        with tenant.lock:
            drive = tenant.drives[self.stack.graph.personal_drive_id]
            for item in tenant.walk(drive.root_id):
                if item.deleted or item.kind in (ROOT, FOLDER):
                    continue
                parts: list[str] = []
                current = item
                inside_package = False
                while current.parent_id is not None:
                    parts.append(current.name)
                    parent = tenant.items[current.parent_id]
                    inside_package = inside_package or parent.kind not in (FOLDER, ROOT)
                    current = parent
                path = "/".join(reversed(parts))
                if not path.startswith(tuple(f"{top}/" for top in TOPS)) or inside_package:
                    continue
                if item.kind != FILE or item.malware:
                    skipped.add(item.id)
                else:
                    expected[path] = item.id
        return expected, skipped

    def stored(self) -> tuple[set[str], dict[str, dict[str, object]]]:
        objects = {obj.name for obj in self.stack.supabase.list_objects(self.bucket)}
        rows = {str(row["original_path"]): row for row in self.stack.supabase.rows("doc_metadata")}
        return objects, rows

    def traffic(self) -> int:
        servers = self.stack.servers
        return sum(servers[name].stats.bytes_in + servers[name].stats.bytes_out for name in ("download", "supabase"))

    # -- the steps -------------------------------------------------------------------------------------

    async def first_run(self) -> str:
        await self.controller.start()
        settings = load_settings(self.paths.settings_file)
        wanted = self.stack.settings_json()
        if check_ready(settings):
            raise StepFailed(f"settings still incomplete: {check_ready(settings)[0]}")
        if settings.yacht_id != wanted["yacht_id"] or settings.supabase_url != wanted["supabase_url"]:
            raise StepFailed("the settings do not point at the simulators")
        if self.controller.host.services is None:
            raise StepFailed("the services did not open after the first run")
        return f"settings imported from the simulator (yacht {settings.yacht_id})"

    async def connect(self) -> str:
        before = self.stack.entra.grant_counts.copy()
        self.window.connect_button.click()
        await wait_until(lambda: self.controller.account is not None, "the sign-in to finish")
        grants = {k: v - before.get(k, 0) for k, v in self.stack.entra.grant_counts.items() if v > before.get(k, 0)}
        if not any("device_code" in grant for grant in grants):
            raise StepFailed(f"the simulated Entra ID issued no device-code token (grants: {grants})")
        upn = self.stack.graph.tenant.user_upn
        account = self.controller.account
        if account is None or account.username.lower() != upn.lower():
            raise StepFailed(f"signed in as {account.username if account else None}, expected {upn}")
        return f"signed in as {upn} with a device code"

    async def tick(self) -> str:
        picker = self.window.picker
        await wait_until(lambda: picker.model.drive_id is not None, "the drive list")
        await picker.settled()
        model = picker.model
        ticked: dict[str, str] = {}
        for row in range(model.rowCount()):
            index = model.index(row, 0)
            item = model.item(index)
            if item is not None and item.name in TOPS:
                model.set_checked(index, True)
                ticked[item.name] = item.item_id
        await self.controller.settled()
        state = open_state(self.paths.state_db)
        try:
            saved = {entry.item_id for entry in state.selection() if entry.included}
        finally:
            state.close()
        wanted = {self.stack.graph.find(f"/{top}").id for top in TOPS}
        if saved != wanted:
            raise StepFailed(f"the state holds {sorted(saved)}, the simulator's folders are {sorted(wanted)}")
        return f"ticked {', '.join(sorted(ticked))}; saved in the state"

    async def sync_with_pause(self) -> list[tuple[str, str]]:
        expected, _ = self.tenant_files()
        self.stack.faults.link = LinkShaper(LINK_BYTES_PER_S, 0.0)
        self.bar_values.clear()
        self.window.sync_button.click()
        await wait_until(lambda: len(self.stored()[0]) >= 3, "the first files in storage")
        self.window.pause_button.click()
        await wait_until(lambda: PauseReason.USER in self.controller.presenter.reasons, "the sync to pause")
        await asyncio.sleep(0.5)  # chunks already on the wire land
        if self.screenshots is not None:
            save_screenshot(self.window, self.screenshots, "main-window")
        objects_paused, traffic_paused = len(self.stored()[0]), self.traffic()
        await asyncio.sleep(1.5)
        objects_later, moved = len(self.stored()[0]), self.traffic() - traffic_paused
        if objects_later != objects_paused or moved > 64 * 1024:
            raise StepFailed(f"transfers went on while paused: {objects_later - objects_paused} objects, {moved} bytes")
        if objects_paused >= len(expected):
            raise StepFailed("the sync had finished before Pause: nothing to resume")
        self.window.resume_button.click()
        await wait_until(lambda: not self.controller.sync.running, "the sync to finish", seconds=STEP_TIMEOUT_S)
        await self.controller.settled()  # the History and Problems tabs are read again after a sync
        self.stack.faults.link = None
        objects, rows = self.stored()
        if set(rows) != set(expected):
            missing = sorted(set(expected) - set(rows))[:3]
            raise StepFailed(f"{len(rows)} rows in doc_metadata, expected {len(expected)} (missing e.g. {missing})")
        if len(objects) != len(expected):
            raise StepFailed(f"{len(objects)} objects in storage, expected {len(expected)}")
        moved_mid = [value for value in self.bar_values if 0 < value < 1000]
        if not moved_mid or max(self.bar_values, default=0) < 1000:
            raise StepFailed(f"the progress bar did not move through the sync (values seen: {self.bar_values[:8]})")
        return [
            ("sync with progress", f"{len(objects)} objects and {len(rows)} rows in the simulator; the progress bar "
                                   f"moved through {len(set(moved_mid))} values"),
            ("pause and resume", f"paused at {objects_paused} of {len(expected)} objects, nothing moved for 1.5 s "
                                 f"({moved} bytes), then the rest arrived"),
        ]  # fmt: skip

    async def problems(self) -> str:
        _, skipped = self.tenant_files()
        shown = {p.item_id: p for p in self.window.problems.model.records() if p.kind is FileProblemKind.SKIPPED}
        missing = skipped - set(shown)
        if not skipped or missing:
            raise StepFailed(f"skips not in the Problems tab: {sorted(missing)} (of {sorted(skipped)})")
        objects, _ = self.stored()
        names = {shown[item_id].path.rsplit("/", 1)[-1]: shown[item_id].path for item_id in skipped}
        leaked = [path for name, path in names.items() if any(key.endswith(name) for key in objects)]
        if leaked:
            raise StepFailed(f"skipped files reached storage: {leaked}")
        if self.screenshots is not None:
            self.window.tabs.setCurrentWidget(self.window.problems)
            self.window.problems.select_row(0)
            save_screenshot(self.window, self.screenshots, "problems")
        reasons = "; ".join(sorted({shown[i].message.split(".")[0] for i in skipped}))
        return f"{len(skipped)} skips shown with their reasons ({reasons}), none in storage"

    async def second_sync(self) -> str:
        objects_before, rows_before = self.stored()
        jobs_before = len(self.window.history.model.records())
        self.stack.reset_stats()
        self.window.sync_button.click()
        await self.controller.settled()  # the click's sync, then the tabs read again
        jobs = self.window.history.model.records()
        if len(jobs) != jobs_before + 1 or jobs[0].status is not JobStatus.COMPLETED:
            raise StepFailed(f"no completed second sync in the history ({jobs[0].status if jobs else None})")
        objects, rows = self.stored()
        downloads = self.stack.servers["download"].stats.requests
        sent = self.stack.servers["supabase"].stats.bytes_in
        if downloads or objects != objects_before or len(rows) != len(rows_before) or sent > 20_000:
            raise StepFailed(f"{downloads} downloads, {len(objects) - len(objects_before)} new objects, {sent} bytes "
                             "sent to Supabase for a sync with nothing to do")  # fmt: skip
        if self.screenshots is not None:
            self.window.tabs.setCurrentWidget(self.window.history)
            save_screenshot(self.window, self.screenshots, "history")
        return f"no download, no new object, {sent} bytes of bookkeeping to Supabase"

    async def layout(self) -> str:
        clipped = clipped_in_any_tab(self.window)
        if clipped:
            raise StepFailed("; ".join(clipped[:3]))
        return f"no clipped label at scale {os.environ.get('QT_SCALE_FACTOR', '1')}"

    async def run(self) -> int:
        steps: list[tuple[str, Callable[[], Awaitable[str | list[tuple[str, str]]]]]] = [
            ("first run", self.first_run), ("connect", self.connect), ("tick folders", self.tick),
            ("sync, pause and resume", self.sync_with_pause), ("problem shown", self.problems),
            ("second sync with nothing to do", self.second_sync), ("layout", self.layout),
        ]  # fmt: skip
        failed = False
        for name, step in steps:
            if failed:
                print(f"FAIL {name}: not run, an earlier step failed", flush=True)
                continue
            try:
                outcome = await asyncio.wait_for(step(), STEP_TIMEOUT_S * 2)
            except StepFailed as exc:
                print(f"FAIL {name}: {exc}", flush=True)
                failed = True
                continue
            except Exception as exc:  # report every unexpected error as the step's failure
                print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
                failed = True
                continue
            for label, reason in outcome if isinstance(outcome, list) else [(name, outcome)]:
                print(f"PASS {label}: {reason}", flush=True)
        return 1 if failed else 0


def _quiet_qt_messages() -> None:
    """Qt's own warnings (the offscreen platform's chatter) go to the log, not between the step lines."""
    qt_log = logging.getLogger("qt")

    def handler(kind: QtMsgType, _context: QMessageLogContext, message: str) -> None:
        qt_log.log(logging.WARNING if kind is not QtMsgType.QtDebugMsg else logging.DEBUG, "%s", message)

    qInstallMessageHandler(handler)


def run_self_test(args: argparse.Namespace) -> int:
    import qasync

    from celeste_desktop.gui.launch import import_demo_settings, make_application, start_demo_stack, vault_factory

    home = Path(tempfile.mkdtemp(prefix="celeste-self-test-"))
    paths = AppPaths.resolve(home)
    paths.ensure()
    redactor = Redactor()
    configure_logging(paths.log_file, args.log_level or "INFO", redactor)
    app = make_application()
    _quiet_qt_messages()
    stack = start_demo_stack(paths, auto_consent=True, device_code_interval_s=1)
    screenshots = Path(os.environ[SCREENSHOTS_ENV]) if os.environ.get(SCREENSHOTS_ENV) else None

    async def first_run(_parent: QWidget) -> bool:
        await asyncio.to_thread(import_demo_settings, paths, stack, redactor)
        return True

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    controller = Controller(
        paths, vault_factory(paths, redactor), hooks=Hooks(first_run=first_run), demo=True,
        on_secret=redactor.add_secret, loop=loop,
    )  # fmt: skip
    controller.window.show()
    test = SelfTest(stack, paths, controller, screenshots)
    try:
        with loop:
            code: int = loop.run_until_complete(test.run())
            loop.run_until_complete(controller.shutdown())
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)
    print("self-test " + ("passed" if code == 0 else "FAILED"), flush=True)
    return code
