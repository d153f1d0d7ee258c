"""The window's main flow against the simulators: Connect, tick, Sync now with progress, the
History and Problems tabs, a second sync with nothing to do, Pause and Resume mid-sync, and the
ticks coming back at the next start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from test_controller_harness import Harness, controller_harness, tenant_files

from celeste_desktop.config.paths import AppPaths
from celeste_desktop.domain.models import FileProblemKind, JobStatus
from celeste_desktop.engine.events import PauseReason
from celeste_desktop.sim.faults import LinkShaper
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.store.db import open_state


@pytest.fixture
def harness(qapp: QApplication, sim: SimStack, sim_home: Path) -> Iterator[Harness]:
    with controller_harness(qapp, sim, sim_home) as built:
        yield built


def test_connect_tick_sync_and_sync_again(harness: Harness, sim: SimStack) -> None:
    window, controller = harness.window, harness.controller
    harness.run(controller.start())
    assert window.account_label.text() == "Account: not signed in"
    assert not window.sync_button.isEnabled()
    harness.start_signed_in()
    assert window.account_label.text() == f"Account: {sim.graph.tenant.user_upn}"
    assert window.connection_label.text() == "Connected"
    assert not window.connect_button.isVisible()
    assert not window.sync_button.isEnabled(), "nothing is ticked yet"

    harness.tick("01_BRIDGE")
    assert window.sync_button.isEnabled()
    state = open_state(AppPaths.resolve(harness.home).state_db)
    try:
        saved = [(entry.item_id, entry.included) for entry in state.selection()]
        assert [drive.drive_id for drive in state.drives()] == [sim.graph.personal_drive_id]
    finally:
        state.close()
    assert saved == [(sim.graph.find("/01_BRIDGE").id, True)]

    bar_values: list[int] = []
    window.progress.bytes_bar.valueChanged.connect(bar_values.append)
    rows_seen: list[int] = []
    window.transfers_model.rowsInserted.connect(lambda *_: rows_seen.append(window.transfers_model.rowCount()))
    window.sync_button.click()
    harness.wait(lambda: controller.sync.running, "the sync to start")
    assert not window.sync_button.isEnabled() and window.pause_button.isEnabled() and window.cancel_button.isEnabled()
    harness.finish_sync()

    expected = tenant_files(sim, "01_BRIDGE")
    assert set(harness.rows()) == expected
    assert harness.objects() == len(expected)
    assert rows_seen and max(rows_seen) >= 1, "transfers were listed while they ran"
    assert bar_values[-1] == 1000 and any(0 < value < 1000 for value in bar_values)
    harness.pump(2.0)  # finished rows leave the list shortly after
    assert window.transfers_model.rowCount() == 0
    assert window.progress.files_bar.format() == f"{len(expected) + 3} of {len(expected) + 3} files"
    assert "Completed" in window.summary.label.text()
    jobs = window.history.model.records()
    assert [(job.dry_run, job.status) for job in jobs] == [(False, JobStatus.COMPLETED), (True, JobStatus.COMPLETED)]
    problems = window.problems.model.records()
    assert {p.kind for p in problems} == {FileProblemKind.SKIPPED}
    assert any("OneNote" in p.message for p in problems)
    assert window.tabs.tabText(window.tabs.indexOf(window.problems)) == f"Pro&blems ({len(problems)})"

    objects_before = harness.objects()
    sim.reset_stats()
    job = harness.run(controller.sync_now())
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.counters.bytes_uploaded == 0
    assert sim.servers["download"].stats.requests == 0
    assert harness.objects() == objects_before
    assert len(window.history.model.records()) == 3, "no second dry run: only the first sync is previewed"


def test_pause_stops_transfers_and_resume_continues(harness: Harness, sim: SimStack) -> None:
    window, controller = harness.window, harness.controller
    harness.start_signed_in()
    harness.tick("01_BRIDGE", "04_MANUALS")
    sim.faults.link = LinkShaper(300_000, 0.0)
    window.sync_button.click()
    harness.wait(lambda: harness.objects() >= 2, "the first objects in storage")
    window.pause_button.click()
    harness.wait(lambda: PauseReason.USER in controller.presenter.reasons, "the pause")
    assert window.banner.shown() == ["user"]
    assert "Paused by you" in window.banner.text("user")
    assert window.resume_button.isEnabled() and not window.pause_button.isEnabled()
    harness.pump(0.4)
    stored = harness.objects()
    sent = sim.servers["supabase"].stats.bytes_in
    harness.pump(1.0)
    assert harness.objects() == stored, "no object may arrive while paused"
    assert sim.servers["supabase"].stats.bytes_in - sent < 64 * 1024
    assert {row.status for row in window.transfers_model.rows() if row.finished_at is None} <= {"Paused"}
    expected = tenant_files(sim, "01_BRIDGE", "04_MANUALS")
    assert stored < len(expected)

    button = window.banner.button("user")
    assert button is not None and button.text() == "Resume"
    button.click()  # the banner's Resume does what the Resume button does
    harness.wait(lambda: not window.banner.shown(), "the banner to clear")
    harness.finish_sync()
    sim.faults.link = None
    assert set(harness.rows()) == expected
    assert harness.objects() == len(expected)


def test_ticks_come_back_at_the_next_start(qapp: QApplication, sim: SimStack, sim_home: Path) -> None:
    with controller_harness(qapp, sim, sim_home) as first:
        first.start_signed_in()
        first.tick("04_MANUALS")
    with controller_harness(qapp, sim, sim_home) as second:
        second.run(second.controller.start())
        assert second.controller.account is not None, "the saved sign-in is used without asking again"
        second.wait(lambda: second.window.picker.model.drive_id is not None, "the drive list")
        second.run(second.window.picker.settled())
        model = second.window.picker.model
        states = {
            model.item(model.index(row, 0)).name: model.check_state(model.index(row, 0))  # type: ignore[union-attr]
            for row in range(model.rowCount())
        }
        assert states["04_MANUALS"] is Qt.CheckState.Checked
        assert states["01_BRIDGE"] is Qt.CheckState.Unchecked
        assert second.window.sync_button.isEnabled()
