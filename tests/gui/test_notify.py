"""Desktop notifications: one per job, failures coalesced, quiet while the window is in front."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from PySide6.QtWidgets import QSystemTrayIcon, QWidget
from pytestqt.qtbot import QtBot

from celeste_desktop.domain.models import JobStatus
from celeste_desktop.gui.notify import Notifier, window_is_foreground
from celeste_desktop.gui.tray import TrayController


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Desk:
    """A notifier wired to a tray, with everything it posted."""

    tray: TrayController
    clock: FakeClock
    posted: list[tuple[str, str]] = field(default_factory=list)
    window_in_front: bool = False
    notifier: Notifier = field(init=False)


@pytest.fixture
def desk(qtbot: QtBot) -> Desk:
    state = Desk(tray=TrayController(available=False), clock=FakeClock())
    state.notifier = Notifier(
        state.tray, foreground=lambda: state.window_in_front, clock=state.clock, problem_interval_s=300
    )
    state.notifier.posted.connect(lambda title, message: state.posted.append((title, message)))
    return state


def test_a_finished_job_notifies_once(desk: Desk) -> None:
    assert desk.notifier.job_finished(JobStatus.COMPLETED, "40 files copied (1.2 GB).", job_id="job-1")
    assert not desk.notifier.job_finished(JobStatus.COMPLETED, "40 files copied (1.2 GB).", job_id="job-1")
    assert desk.posted == [("Sync finished", "40 files copied (1.2 GB).")]


def test_cancelled_and_no_op_jobs_stay_silent(desk: Desk) -> None:
    assert not desk.notifier.job_finished(JobStatus.CANCELLED, "Cancelled by you.", job_id="job-1")
    assert not desk.notifier.job_finished("completed", "Nothing new to copy.", job_id="job-2", files_changed=0)
    assert not desk.notifier.job_finished(JobStatus.RUNNING, "Copying…", job_id="job-3")
    assert desk.posted == []


def test_partial_and_failed_jobs_say_what_to_do(desk: Desk) -> None:
    desk.notifier.job_finished(JobStatus.PARTIAL, "38 files copied, 2 failed.", job_id="job-1")
    desk.notifier.job_finished(JobStatus.FAILED, "Sign-in expired.", job_id="job-2")
    (partial_title, partial), (failed_title, failed) = desk.posted
    assert partial_title == "Sync finished with problems"
    assert partial.startswith("38 files copied, 2 failed.") and "Open Problems…" in partial
    assert failed_title == "Sync failed"
    assert failed.startswith("Sign-in expired.") and "Open CelesteOS Desktop" in failed


def test_the_same_failure_repeated_by_scheduled_jobs_is_shown_once(desk: Desk) -> None:
    for number in range(5):
        desk.notifier.job_finished(JobStatus.FAILED, "The satellite link is down.", job_id=f"job-{number}")
    assert len(desk.posted) == 1
    desk.notifier.job_finished(JobStatus.FAILED, "Storage is full.", job_id="job-5")
    assert len(desk.posted) == 2, "a different failure is news"
    desk.notifier.job_finished(JobStatus.COMPLETED, "3 files copied.", job_id="job-6")
    desk.notifier.job_finished(JobStatus.FAILED, "Storage is full.", job_id="job-7")
    assert [title for title, _ in desk.posted] == ["Sync failed", "Sync failed", "Sync finished", "Sync failed"]


def test_a_burst_of_problems_becomes_one_summary(desk: Desk) -> None:
    assert desk.notifier.problem("Sign in again", "Your Microsoft sign-in expired. Choose Connect… to sign in.")
    for number in range(3):
        desk.clock.now += 10
        assert not desk.notifier.problem("File failed", f"report-{number}.pdf could not be read.")
    assert desk.notifier.held_problems == 3
    assert not desk.notifier.flush(), "the interval has not passed yet"
    desk.clock.now += 300
    assert desk.notifier.flush()
    assert desk.notifier.held_problems == 0
    title, message = desk.posted[-1]
    assert title == "3 more problems need attention"
    assert "report-2.pdf could not be read." in message and "Open Problems…" in message
    assert len(desk.posted) == 2


def test_a_single_held_problem_is_shown_as_itself(desk: Desk) -> None:
    desk.notifier.problem("Storage is full", "Ask your CelesteOS contact for more space.")
    desk.clock.now += 1
    desk.notifier.problem("Sign in again", "Choose Connect… to sign in.")
    desk.clock.now += 300
    desk.notifier.flush()
    assert desk.posted[-1] == ("Sign in again", "Choose Connect… to sign in.")


def test_held_problems_fold_into_the_job_notification(desk: Desk) -> None:
    desk.notifier.problem("File failed", "a.pdf could not be read.")
    desk.notifier.problem("File failed", "b.pdf could not be read.")
    desk.notifier.problem("File failed", "c.pdf could not be read.")
    desk.notifier.job_finished(JobStatus.PARTIAL, "10 files copied, 3 failed.", job_id="job-1")
    assert desk.notifier.held_problems == 0
    title, message = desk.posted[-1]
    assert title == "Sync finished with problems"
    assert "2 more problems were reported meanwhile" in message
    assert not desk.notifier.flush(), "nothing is left to show later"


def test_a_failed_job_and_the_problems_after_it_are_one_storm(desk: Desk) -> None:
    desk.notifier.job_finished(JobStatus.FAILED, "The satellite link is down.", job_id="job-1")
    desk.clock.now += 5
    assert not desk.notifier.problem("Upload failed", "report.pdf could not be sent.")
    assert desk.notifier.held_problems == 1
    assert len(desk.posted) == 1


def test_held_problems_are_flushed_by_the_timer(qtbot: QtBot) -> None:
    clock = FakeClock()
    notifier = Notifier(TrayController(available=False), foreground=lambda: False, clock=clock, problem_interval_s=0.05)
    notifier.problem("First", "Do this.")
    notifier.problem("Second", "Do that.")
    clock.now += 1  # the fake clock says the interval is over when the 50 ms timer fires
    with qtbot.waitSignal(notifier.posted, timeout=2000) as blocker:
        pass
    assert blocker.args == ["Second", "Do that."]


def test_nothing_pops_up_while_the_window_is_in_front(desk: Desk) -> None:
    desk.window_in_front = True
    assert not desk.notifier.job_finished(JobStatus.FAILED, "Sign-in expired.", job_id="job-1")
    assert not desk.notifier.problem("Sign in again", "Choose Connect… to sign in.")
    desk.window_in_front = False
    assert not desk.notifier.job_finished(JobStatus.FAILED, "Sign-in expired.", job_id="job-1"), "not replayed"
    assert desk.posted == []
    assert desk.notifier.problem("Sign in again", "Choose Connect… to sign in."), "the window hid it, not the limit"


def test_notifications_can_be_turned_off(desk: Desk) -> None:
    desk.notifier.enabled = False
    desk.notifier.job_finished(JobStatus.COMPLETED, "3 files copied.", job_id="job-1")
    desk.notifier.problem("Storage is full", "Ask for more space.")
    assert desk.posted == []


def test_clicking_a_notification_opens_the_right_place(desk: Desk, qtbot: QtBot) -> None:
    desk.notifier.problem("Storage is full", "Ask your CelesteOS contact for more space.")
    with qtbot.waitSignal(desk.tray.problems_requested, timeout=1000):
        desk.tray.message_clicked.emit()
    desk.notifier.job_finished(JobStatus.COMPLETED, "3 files copied.", job_id="job-1")
    with qtbot.waitSignal(desk.tray.show_requested, timeout=1000):
        desk.tray.message_clicked.emit()


class RecordingTray(TrayController):
    def __init__(self) -> None:
        super().__init__(available=True)
        self.shown: list[tuple[str, QSystemTrayIcon.MessageIcon, bool]] = []

    def show_message(
        self,
        title: str,
        message: str,
        kind: QSystemTrayIcon.MessageIcon = QSystemTrayIcon.MessageIcon.Information,
        msecs: int = 10_000,
    ) -> bool:
        delivered = super().show_message(title, message, kind, msecs)
        self.shown.append((title, kind, delivered))
        return delivered


def test_notifications_go_through_the_tray_when_there_is_one(qtbot: QtBot) -> None:
    tray = RecordingTray()
    notifier = Notifier(tray, foreground=lambda: False)
    notifier.job_finished(JobStatus.COMPLETED, "3 files copied.", job_id="job-1")
    notifier.job_finished(JobStatus.FAILED, "Storage is full.", job_id="job-2")
    # The icon was never shown (offscreen has no tray), so the tray declines to pop anything.
    assert tray.shown == [
        ("Sync finished", QSystemTrayIcon.MessageIcon.Information, False),
        ("Sync failed", QSystemTrayIcon.MessageIcon.Critical, False),
    ]


def test_window_in_front_detection(qtbot: QtBot) -> None:
    assert not window_is_foreground(None)
    window = QWidget()
    qtbot.addWidget(window)
    assert not window_is_foreground(window), "a hidden window is not in front"
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    assert window_is_foreground(window)
    window.showMinimized()
    assert not window_is_foreground(window)
