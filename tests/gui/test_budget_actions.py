"""The data budget in the window: the banner's Raise budget…, its dialog, and the first-sync
preview's share of the budget left."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from test_controller_harness import configure, controller_harness, tenant_files

from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings, load_settings, save_settings
from celeste_desktop.engine.budget import MB, BudgetStatus, budget_status
from celeste_desktop.engine.events import PauseReason
from celeste_desktop.gui.budget_dialog import BudgetDialog
from celeste_desktop.gui.views.banner import RAISE_BUDGET, Banner
from celeste_desktop.gui.views.preview import PreviewDialog, SyncPreview
from celeste_desktop.gui.wiring import Background
from celeste_desktop.sim.stack import SimStack

TODAY = date(2026, 11, 25)
YACHT = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"


def status(*, monthly_mb: int = 0, daily_mb: int = 0, monthly_used: int = 0, daily_used: int = 0) -> BudgetStatus:
    return budget_status(today=TODAY, reset_day=1, monthly_mb=monthly_mb, daily_mb=daily_mb,
                         monthly_used=monthly_used, daily_used=daily_used)  # fmt: skip


# -- the banner ---------------------------------------------------------------------------------------


def test_budget_banner_offers_sync_anyway_and_raise_budget(qtbot: QtBot) -> None:
    banner = Banner()
    qtbot.addWidget(banner)
    banner.show_pause(PauseReason.BUDGET, "Data budget reached: 1.0 MB of 1.0 MB used today.")
    main, more = banner.button("budget"), banner.button("budget", RAISE_BUDGET)
    assert main is not None and main.text() == "Sync anyway"
    assert more is not None and more.text() == "Raise budget…"
    with qtbot.waitSignal(banner.more_requested) as raised:
        more.click()
    assert raised.args == ["budget", RAISE_BUDGET]
    with qtbot.waitSignal(banner.action_requested) as anyway:
        main.click()
    assert anyway.args == ["budget"]
    banner.show_pause(PauseReason.BUDGET, "Data budget reached: 1.2 MB of 1.0 MB used today.")
    assert banner.button("budget", RAISE_BUDGET) is more, "a new message keeps the buttons"
    assert "1.2 MB" in banner.text("budget")
    banner.show_pause(PauseReason.USER, "Paused by you.")
    assert banner.button("user", RAISE_BUDGET) is None


# -- the dialog -----------------------------------------------------------------------------------------


def test_budget_dialog_saves_only_a_budget_above_what_is_used(qtbot: QtBot, tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    save_settings(settings_file, Settings(yacht_id=YACHT, budget_monthly_mb=100, budget_reset_day=5))
    used = budget_status(today=TODAY, reset_day=5, monthly_mb=100, daily_mb=0, monthly_used=120 * MB, daily_used=0)
    dialog = BudgetDialog(load_settings(settings_file), used, settings_file)
    qtbot.addWidget(dialog)
    assert not dialog.ok_button.isEnabled()
    assert "stay paused" in dialog.problem.text()
    dialog.monthly.setValue(110)  # still below the 120 MB used
    assert not dialog.ok_button.isEnabled() and not dialog.apply()
    dialog.monthly.setValue(500)
    assert dialog.ok_button.isEnabled()
    assert dialog.outcome.text() == "Syncing resumes at once, with 380 MB left."
    dialog.ok_button.click()
    saved = load_settings(settings_file)
    assert (saved.budget_monthly_mb, saved.budget_reset_day, saved.yacht_id) == (500, 5, YACHT)
    assert dialog.saved == saved
    dialog.monthly.setValue(0)
    assert dialog.outcome.text() == "Syncing resumes at once with no limit."


def test_budget_dialog_starts_on_the_daily_budget_when_that_stopped_the_sync(qtbot: QtBot, tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    save_settings(settings_file, Settings(budget_monthly_mb=10_000, budget_daily_mb=50))
    used = status(monthly_mb=10_000, daily_mb=50, monthly_used=900 * MB, daily_used=50 * MB)
    dialog = BudgetDialog(load_settings(settings_file), used, settings_file)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.focusWidget() is dialog.daily
    dialog.daily.setValue(80)
    assert dialog.outcome.text() == "Syncing resumes at once, with 30 MB left."


# -- the preview ------------------------------------------------------------------------------------------


def test_preview_says_the_share_of_the_budget_left() -> None:
    budget = status(monthly_mb=3000, monthly_used=1800 * MB)
    preview = SyncPreview(files=120, bytes=222 * MB, skipped=0, bytes_per_second=0, budget=budget)
    text = preview.describe()
    # 222 MB of files cross twice (down, then up) plus headers: about 448 MB of the 1200 MB left.
    assert "About 448 MB would cross the link" in text
    assert "that is 37 % of the 1200 MB left in this month's data budget (resets 1 Dec)." in text
    assert not preview.exceeds_budget


def test_preview_warns_plainly_when_the_sync_needs_more_than_is_left(qtbot: QtBot) -> None:
    budget = status(monthly_mb=10_000, daily_mb=500, monthly_used=100 * MB, daily_used=300 * MB)
    preview = SyncPreview(files=900, bytes=400 * MB, skipped=3, bytes_per_second=0, budget=budget)
    assert preview.exceeds_budget
    assert "more than the 200 MB left in today's data budget" in preview.describe()
    dialog = PreviewDialog(preview)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.budget_warning.isVisible()
    assert "more than the data budget has left" in dialog.budget_warning.text()
    assert "today's data budget" in dialog.text.text()


def test_preview_without_a_budget_says_nothing_of_it(qtbot: QtBot) -> None:
    preview = SyncPreview(files=900, bytes=400 * MB, skipped=0, bytes_per_second=0, budget=status())
    assert "budget" not in preview.describe()
    dialog = PreviewDialog(preview)
    qtbot.addWidget(dialog)
    assert not dialog.budget_warning.isVisibleTo(dialog)
    used_up = SyncPreview(
        files=1, bytes=MB, skipped=0, bytes_per_second=0, budget=status(daily_mb=5, daily_used=6 * MB)
    )
    assert "today's data budget is used up" in used_up.describe()


# -- in the window, against the simulators -----------------------------------------------------------------


def test_first_sync_preview_in_the_window_names_the_budget_share(
    qapp: QApplication, sim: SimStack, sim_home: Path
) -> None:
    configure(sim_home, budget_monthly_mb=4)
    with controller_harness(qapp, sim, sim_home, quick_clock=True) as harness:
        controller = harness.controller
        controller.sync.preview_threshold = (0, 0)  # every first sync is "large" here
        harness.start_signed_in()
        harness.tick("01_BRIDGE")
        harness.window.sync_button.click()
        harness.wait(lambda: controller.preview_dialog is not None, "the preview")
        dialog = controller.preview_dialog
        assert dialog is not None
        text = dialog.text.text()
        share = r"that is \d+ % of the \d\.\d MB left in this month's data budget \(resets \d+ \w+\)"
        assert re.search(share, text), text
        dialog.later_button.click()
        harness.finish_sync()
        assert harness.objects() == 0


def test_raise_budget_lifts_the_pause_at_once(qapp: QApplication, sim: SimStack, sim_home: Path) -> None:
    configure(sim_home, budget_daily_mb=1)
    with controller_harness(qapp, sim, sim_home, quick_clock=True) as harness:
        window, controller = harness.window, harness.controller
        paths = AppPaths.resolve(sim_home)
        background = Background(qapp, controller, paths, load_settings(paths.settings_file))
        try:
            harness.start_signed_in()
            harness.tick("01_BRIDGE", "04_MANUALS")
            window.sync_button.click()
            harness.wait(lambda: PauseReason.BUDGET in controller.presenter.reasons, "the budget pause")
            stored = harness.objects()
            button = window.banner.button("budget", RAISE_BUDGET)
            assert button is not None and button.text() == "Raise budget…"
            button.click()
            harness.wait(lambda: background.budget_dialog is not None, "the budget dialog")
            dialog = background.budget_dialog
            assert dialog is not None
            assert not dialog.ok_button.isEnabled(), "1 MB is used up already"
            harness.pump(0.3)
            assert harness.objects() == stored, "nothing crosses while the dialog is open"
            dialog.daily.setValue(1000)
            dialog.ok_button.click()
            harness.wait(lambda: PauseReason.BUDGET not in controller.presenter.reasons, "the pause to lift")
            assert "budget" not in window.banner.shown()
            harness.finish_sync()
            assert set(harness.rows()) == tenant_files(sim, "01_BRIDGE", "04_MANUALS")
            assert load_settings(paths.settings_file).budget_daily_mb == 1000
        finally:
            background.tray.hide()
