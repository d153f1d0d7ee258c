"""The window's surroundings as launch wires them: Help menu, diagnostics export, the data chart."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from test_controller_harness import Harness, controller_harness

from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import load_settings
from celeste_desktop.gui.wiring import Background
from celeste_desktop.sim.stack import SimStack


@pytest.fixture
def wired(qapp: QApplication, sim: SimStack, sim_home: Path) -> Iterator[tuple[Harness, Background]]:
    with controller_harness(qapp, sim, sim_home) as harness:
        paths = AppPaths.resolve(sim_home)
        background = Background(qapp, harness.controller, paths, load_settings(paths.settings_file))
        yield harness, background
        background.tray.hide()


def test_help_menu_offers_diagnostics_and_about(wired: tuple[Harness, Background]) -> None:
    harness, _ = wired
    window = harness.controller.window
    menus = {action.text(): action for action in window.menuBar().actions()}
    assert "&Help" in menus
    entries = [action.text() for action in menus["&Help"].menu().actions()]
    assert entries == ["Export &diagnostics…", "&About CelesteOS Desktop"]
    tabs = [window.tabs.tabText(index) for index in range(window.tabs.count())]
    assert "&Data used" in tabs


def test_diagnostics_export_holds_logs_and_no_secret(
    wired: tuple[Harness, Background], sim: SimStack, tmp_path: Path
) -> None:
    harness, background = wired
    harness.start_signed_in()
    paths = AppPaths.resolve(harness.home)
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    # A log line written before the redactor knew the key: the export must still scrub it.
    (paths.log_dir / "celeste-desktop.log").write_text(f"upload failed with key {sim.yacht_key}\nsync done\n")
    target = tmp_path / "diag.zip"
    written = harness.run(background.export_diagnostics(target))
    assert written == target
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        text = "\n".join(archive.read(name).decode("utf-8", "replace") for name in names)
    assert {"environment.json", "settings.json", "state-summary.json"} <= set(names)
    assert any(name.startswith("logs/") for name in names)
    assert sim.yacht_key not in text
    assert "it.officer@mysimyacht.onmicrosoft.com" in text  # the account is useful to support


def test_data_chart_reads_the_usage_after_a_sync(wired: tuple[Harness, Background]) -> None:
    harness, background = wired
    harness.start_signed_in()
    harness.tick("01_BRIDGE")
    harness.run(harness.controller.sync_now())
    harness.finish_sync()
    harness.run(background.refresh_usage())
    summary = background.chart.summary()
    assert summary != "No data usage recorded yet.", "the sync's bytes appear in the chart"
