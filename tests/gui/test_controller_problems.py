"""The preview before a large first sync, the Problems tab's Retry and Open in OneDrive, the
manifest behind a History row, Cancel, and the periodic background sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from test_controller_harness import Harness, configure, controller_harness, tenant_files

from celeste_desktop.domain.models import FileProblemKind, JobStatus
from celeste_desktop.gui.controller import Hooks
from celeste_desktop.sim.faults import LinkShaper
from celeste_desktop.sim.stack import SimStack


@pytest.fixture
def opened() -> list[str]:
    return []


@pytest.fixture
def harness(qapp: QApplication, sim: SimStack, sim_home: Path, opened: list[str]) -> Iterator[Harness]:
    configure(sim_home, max_attempts=1, sync_interval_minutes=30)
    hooks = Hooks(open_url=lambda url: opened.append(url) is None)
    with controller_harness(qapp, sim, sim_home, hooks=hooks) as built:
        yield built


def test_large_first_sync_is_previewed_with_not_now_and_start(harness: Harness, sim: SimStack) -> None:
    window, controller = harness.window, harness.controller
    harness.start_signed_in()
    harness.tick("01_BRIDGE")
    controller.sync.preview_threshold = (1000, 5)  # 13 files: "large" for this test
    expected = tenant_files(sim, "01_BRIDGE")

    task = controller.spawn(controller.sync_now())
    harness.wait(lambda: controller.preview_dialog is not None, "the preview")
    dialog = controller.preview_dialog
    assert dialog is not None
    assert dialog.preview.files == len(expected)
    assert f"would copy {len(expected)} files" in dialog.preview.describe()
    dialog.later_button.click()
    harness.run(task)
    assert harness.objects() == 0, "Not now sends nothing"
    assert [job.dry_run for job in window.history.model.records()] == [True]

    task = controller.spawn(controller.sync_now())
    harness.wait(lambda: controller.preview_dialog is not None, "the preview again (still the first sync)")
    assert controller.preview_dialog is not None
    controller.preview_dialog.start_button.click()
    harness.run(task)
    assert set(harness.rows()) == expected


def test_parked_file_is_retried_and_skips_open_in_onedrive(harness: Harness, sim: SimStack, opened: list[str]) -> None:
    window, controller = harness.window, harness.controller
    harness.start_signed_in()
    harness.tick("01_BRIDGE")
    broken = sim.graph.find("/01_BRIDGE/Navigation/Navigation Procedures.pdf")
    sim.graph.corrupt(broken.id)
    job = harness.run(controller.sync_now())
    assert job is not None and job.status is JobStatus.PARTIAL
    assert "Some files failed" in window.summary.label.text()
    problems = window.problems.model.records()
    parked = [row for row, p in enumerate(problems) if p.kind is FileProblemKind.DEAD_LETTER]
    assert [problems[row].item_id for row in parked] == [broken.id]

    notebook = next(row for row, p in enumerate(problems) if "OneNote" in p.message and p.web_url)
    window.problems.select_row(notebook)
    assert not window.problems.retry_button.isEnabled(), "a skip by rule cannot be retried"
    assert window.problems.open_button.isEnabled()
    window.problems.open_button.click()
    assert opened == [problems[notebook].web_url]

    window.problems.select_row(parked[0])
    assert window.problems.retry_button.isEnabled()
    assert "Navigation Procedures.pdf" in window.problems.details.text()
    sim.graph.corrupt(broken.id, corrupt=False)  # the source is fixed
    window.problems.retry_button.click()
    harness.run(controller.settled())
    assert not any(p.kind is FileProblemKind.DEAD_LETTER for p in window.problems.model.records())
    job = harness.run(controller.sync_now())
    assert job is not None and job.status is JobStatus.COMPLETED
    assert set(harness.rows()) == tenant_files(sim, "01_BRIDGE")

    window.history.view.setCurrentIndex(window.history.model.index(0, 0))
    window.history.open_button.click()
    harness.run(controller.settled())
    dialog = controller.manifest_dialog
    assert dialog is not None and dialog.isVisible()
    outcomes = {row.item_id: row.outcome.value for row in dialog.model.records()}
    assert outcomes[broken.id] == "delivered"
    assert set(outcomes.values()) == {"delivered", "skipped"}, "the second sync sent only the retried file"


def test_cancel_ends_the_sync_and_the_next_one_continues(harness: Harness, sim: SimStack) -> None:
    window, controller = harness.window, harness.controller
    harness.start_signed_in()
    harness.tick("01_BRIDGE", "04_MANUALS")
    sim.faults.link = LinkShaper(300_000, 0.0)
    window.sync_button.click()
    harness.wait(lambda: harness.objects() >= 2, "the first objects in storage")
    window.cancel_button.click()
    harness.finish_sync()
    sim.faults.link = None
    cancelled = window.history.model.records()[0]
    assert cancelled.status is JobStatus.CANCELLED
    expected = tenant_files(sim, "01_BRIDGE", "04_MANUALS")
    assert 0 < harness.objects() < len(expected)
    assert window.progress.phase_label.text() == "Cancelled."
    job = harness.run(controller.sync_now())
    assert job is not None and job.status is JobStatus.COMPLETED
    assert set(harness.rows()) == expected


def test_periodic_sync_runs_only_after_a_first_sync_and_never_twice(harness: Harness, sim: SimStack) -> None:
    controller = harness.controller
    harness.start_signed_in()
    assert controller.periodic.isActive() and controller.periodic.interval() == 30 * 60_000
    harness.tick("01_BRIDGE")
    controller.periodic.timeout.emit()
    harness.run(controller.settled())
    assert harness.window.history.model.records() == [], "the first sync waits for Sync now"

    assert harness.run(controller.sync_now()) is not None
    sim.graph.add_file("/01_BRIDGE/Navigation", "Notice to Mariners 12.pdf", 30_000)
    sim.faults.link = LinkShaper(100_000, 0.0)
    controller.periodic.timeout.emit()
    harness.wait(lambda: controller.sync.running, "the background sync")
    controller.periodic.timeout.emit()  # a tick while one runs starts nothing
    harness.finish_sync()
    sim.faults.link = None
    real = [job for job in harness.window.history.model.records() if not job.dry_run]
    assert len(real) == 2
    assert "01_BRIDGE/Navigation/Notice to Mariners 12.pdf" in harness.rows()
