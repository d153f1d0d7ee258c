"""Connects the window's parts: the real dialogs as the controller's hooks, and the tray,
notifications, metered-network watch and single instance around it.

Kept apart from ``launch.py`` so the wiring can be read (and tested) in one place.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication, QWidget

from celeste_desktop.compose import Services, open_services
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings, load_settings
from celeste_desktop.domain.models import Drive, RemoteItem, SelectionEntry
from celeste_desktop.graph.client import GraphClient

if TYPE_CHECKING:
    from celeste_desktop.auth.vault import Vault
    from celeste_desktop.engine.budget import BudgetStatus
    from celeste_desktop.gui.budget_dialog import BudgetDialog
    from celeste_desktop.gui.controller import Controller, Hooks, VaultFn
    from celeste_desktop.gui.wizard import WizardBackend
    from celeste_desktop.store.records import UsageDay

log = logging.getLogger(__name__)


class GraphFolders:
    """The wizard's FolderSource over the Graph client (the wizard runs before the engine host)."""

    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    async def list_drives(self) -> list[Drive]:
        return list((await self.graph.list_drives()).drives)

    async def list_children(self, drive_id: str, item_id: str) -> list[RemoteItem]:
        return [item async for page in self.graph.iter_children(drive_id, item_id) for item in page]


class ServicesBackend:
    """What the first-run wizard needs of the services: sign-in, folders, saving the selection."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.session = services.session
        self.folder_source = GraphFolders(services.graph)

    async def save_selection(self, entries: Sequence[SelectionEntry], drives: Sequence[Drive]) -> None:
        for drive in drives:
            mine = [entry for entry in entries if entry.drive_id == drive.drive_id]
            if mine:
                self.services.state.save_drive(drive)
            self.services.state.set_selection(drive.drive_id, mine)

    async def aclose(self) -> None:
        await self.services.aclose()


def build_hooks(paths: AppPaths, vault_for: VaultFn) -> Hooks:
    """The controller's hooks with the real Connect dialog, first-run wizard and Settings dialog."""
    from celeste_desktop.gui.autostart import set_start_at_login
    from celeste_desktop.gui.connect_dialog import sign_in_dialog
    from celeste_desktop.gui.controller import Hooks
    from celeste_desktop.gui.settings_dialog import edit_settings
    from celeste_desktop.gui.wizard import run_first_run_wizard

    async def open_backend(settings: Settings, vault: Vault) -> WizardBackend:
        return ServicesBackend(open_services(paths, settings, vault))

    async def first_run(parent: QWidget) -> bool:
        return await run_first_run_wizard(parent, paths, open_backend, vault_for)

    async def open_settings(parent: QWidget) -> bool:
        def autostart(enabled: bool) -> None:
            set_start_at_login(enabled, home=paths.home)

        try:
            secrets = vault_for(load_settings(paths.settings_file))
        except Exception:  # the dialog still edits settings without the vault
            secrets = None
        return await edit_settings(parent, paths.settings_file, set_start_at_login=autostart, secrets=secrets)

    return Hooks(connect=sign_in_dialog, first_run=first_run, open_settings=open_settings)


class Background:
    """Tray icon, notifications, metered-network watch and the single-instance server."""

    def __init__(self, app: QApplication, controller: Controller, paths: AppPaths, settings: Settings) -> None:
        from celeste_desktop.gui.icons import TrayState, app_icon
        from celeste_desktop.gui.metered import MeteredWatch
        from celeste_desktop.gui.notify import Notifier
        from celeste_desktop.gui.tray import TrayController

        app.setWindowIcon(app_icon())
        app.setDesktopFileName("celeste-desktop")
        window = controller.window
        self.tray = TrayController(window)
        self.notifier = Notifier(self.tray, window=window)
        self.metered = MeteredWatch(enabled=settings.pause_on_metered)
        tray = self.tray
        tray.sync_requested.connect(lambda: controller.spawn(controller.sync_now()))
        tray.pause_requested.connect(controller.pause)
        tray.resume_requested.connect(controller.resume)
        tray.show_requested.connect(lambda: _bring_forward(window))
        tray.problems_requested.connect(lambda: _show_problems(window))
        tray.quit_requested.connect(window.close)
        controller.status_changed.connect(lambda state, text: tray.set_state(TrayState(state), text))
        controller.job_finished.connect(
            lambda job: self.notifier.job_finished(job.status, job.error or job.status.value, job_id=job.job_id)
        )
        self.metered.pause_changed.connect(controller.set_metered)
        controller.metered_override.connect(self.metered.sync_anyway)
        if self.metered.should_pause:
            controller.set_metered(True)
        self.paths = paths
        self.controller = controller
        self._add_data_tab()
        self._add_help_menu()
        self.budget_dialog: BudgetDialog | None = None
        window.banner.more_requested.connect(self._banner_more)
        controller.job_finished.connect(lambda _job: controller.spawn(self.refresh_usage()))
        controller.spawn(self.refresh_usage())
        tray.show()

    # -- the data budget: usage per day for 30 days ------------------------------------------

    def _add_data_tab(self) -> None:
        from celeste_desktop.gui.budget_chart import BudgetChart

        window = self.controller.window
        self.chart = BudgetChart()
        self.chart.setAccessibleName("Data used per day, last 30 days")
        tabs = getattr(window, "tabs", None)
        if tabs is not None:
            tabs.addTab(self.chart, "&Data used")

    async def refresh_usage(self) -> None:
        """Read the usage and the budget off the GUI thread, then draw them."""
        import asyncio

        paths = self.paths

        def read() -> tuple[list[UsageDay], BudgetStatus, date] | None:
            if not paths.state_db.exists():
                return None
            from celeste_desktop.compose import UsageTracker
            from celeste_desktop.net.clock import SystemClock
            from celeste_desktop.store.db import open_state

            state = open_state(paths.state_db)
            try:
                today = datetime.now().astimezone().date()
                usage = state.usage_between(today - timedelta(days=29), today)
                status = UsageTracker(state, load_settings(paths.settings_file), SystemClock()).status()
                return usage, status, today
            finally:
                state.close()

        try:
            found = await asyncio.to_thread(read)
        except Exception:  # the chart is informative; a damaged state is reported elsewhere
            log.exception("could not read the data usage for the chart")
            return
        if found is not None:
            self.chart.set_usage(*found)

    def _banner_more(self, key: str, name: str) -> None:
        from celeste_desktop.engine.events import PauseReason
        from celeste_desktop.gui.views.banner import RAISE_BUDGET

        if key == PauseReason.BUDGET.value and name == RAISE_BUDGET:
            self.controller.spawn(self.raise_budget())

    async def raise_budget(self) -> bool:
        """The banner's Raise budget…: a small dialog on the budget alone (the full Settings
        would wait for the paused sync to end before applying). A budget raised above what is
        used goes to the running services at once, and the paused sync resumes."""
        import asyncio

        from celeste_desktop.gui.budget_dialog import BudgetDialog

        controller = self.controller
        services, engine = controller.host.services, controller.engine
        if services is None or engine is None or self.budget_dialog is not None:
            return False
        status = await controller.host.blocking(services.usage.status)
        settings = await asyncio.to_thread(load_settings, self.paths.settings_file)
        dialog = BudgetDialog(settings, status, self.paths.settings_file, controller.window)
        self.budget_dialog = dialog
        try:
            saved = await dialog.run()
        finally:
            self.budget_dialog = None
            dialog.deleteLater()
        if saved is None:
            return False

        async def apply() -> None:
            services.usage.set_budget(saved)
            engine.check_budget()  # lifts the pause now that the budget has room

        await controller.host.run(apply)
        controller.window.show_status("Data budget raised; syncing continues.", 8000)
        await self.refresh_usage()
        return True

    # -- Help: diagnostics and About ---------------------------------------------------------------

    def _add_help_menu(self) -> None:
        window = self.controller.window
        menu_bar = getattr(window, "menuBar", None)
        if menu_bar is None:
            return
        help_menu = menu_bar().addMenu("&Help")
        export = help_menu.addAction("Export &diagnostics…")
        export.triggered.connect(lambda: self.controller.spawn(self.export_diagnostics()))
        about = help_menu.addAction("&About CelesteOS Desktop")
        about.triggered.connect(self._about)

    def _about(self) -> None:
        from celeste_desktop.gui.about import AboutDialog

        AboutDialog(self.controller.window).open()

    async def export_diagnostics(self, target: Path | None = None) -> Path | None:
        """Logs, settings and a state summary in a zip, every secret redacted (for support)."""
        import asyncio

        from PySide6.QtWidgets import QFileDialog, QMessageBox

        from celeste_desktop.cli.context import CliContext
        from celeste_desktop.cli.sync_cmd import diagnostics

        window = self.controller.window
        if target is None:
            default = str(Path.home() / f"celeste-diagnostics-{datetime.now():%Y%m%d-%H%M}.zip")
            chosen, _ = QFileDialog.getSaveFileName(window, "Export diagnostics", default, "Zip files (*.zip)")
            if not chosen:
                return None
            target = Path(chosen)
        context = CliContext(paths=self.paths)
        sink = io.StringIO()
        try:
            await asyncio.to_thread(diagnostics, context, target, sink)
        except Exception as exc:
            QMessageBox.warning(window, "Diagnostics not written", f"{target} could not be written: {exc}")
            return None
        window.statusBar().showMessage(f"Diagnostics written to {target} (secrets redacted).", 15000)
        return target


def _bring_forward(window: QWidget) -> None:
    from celeste_desktop.gui.single_instance import bring_to_front

    bring_to_front(window)


def _show_problems(window: QWidget) -> None:
    _bring_forward(window)
    tabs = getattr(window, "tabs", None)
    problems = getattr(window, "problems", None)
    if tabs is not None and problems is not None:
        tabs.setCurrentWidget(problems)
