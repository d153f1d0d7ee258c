"""Desktop notifications for finished and failed syncs, through the tray, without a storm.

Rules (the people on a bridge PC look at the window when they care; a toast must be worth it):

- At most one notification per job: a second call for the same ``job_id`` is dropped.
- A cancelled job says nothing (the person cancelled it); a completed job that moved nothing
  says nothing (a scheduled sync every 15 minutes must not toast every 15 minutes).
- Failures are coalesced: the same failure repeated by consecutive jobs is shown once until a
  job succeeds or the failure changes; problems arriving within ``problem_interval_s`` of the
  last problem or failure shown are counted and shown once as "N more problems" when the
  interval ends, or folded into the next job notification.
- Nothing pops up while the main window is the active, visible window: the person already
  sees the same information there. Whatever was held back then is dropped, not replayed later.

Every notification posted is also emitted as ``posted(title, message)`` so the controller can
mirror it (e.g. in the status bar) when the platform has no tray.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QSystemTrayIcon, QWidget

from celeste_desktop.domain.models import JobStatus
from celeste_desktop.gui.tray import TrayController

MessageIcon = QSystemTrayIcon.MessageIcon
PROBLEMS_HINT = "Open Problems… from the tray menu to see what to do."


def window_is_foreground(window: QWidget | None) -> bool:
    """True when ``window`` is shown, not minimised, and has the focus of the desktop."""
    return window is not None and window.isVisible() and not window.isMinimized() and window.isActiveWindow()


class Notifier(QObject):
    """Turns job results and problems into rate-limited tray notifications."""

    posted = Signal(str, str)  # title, message of every notification actually posted

    def __init__(
        self,
        tray: TrayController,
        *,
        window: QWidget | None = None,
        foreground: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        problem_interval_s: float = 300.0,
        parent: QObject | None = None,
    ) -> None:
        """``foreground`` overrides the window check (tests); ``clock`` returns monotonic seconds."""
        super().__init__(parent)
        self.enabled = True
        self._tray = tray
        self._window = window
        self._foreground = foreground
        self._clock = clock
        self._interval = problem_interval_s
        self._last_job_id: str | None = None
        self._last_failure: str | None = None  # summary of the failure streak already shown
        self._last_problem_at: float | None = None
        self._held_problems = 0
        self._latest_held: tuple[str, str] | None = None
        self._last_was_problem = False
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self.flush)
        tray.message_clicked.connect(self._on_message_clicked)

    def set_window(self, window: QWidget | None) -> None:
        self._window = window

    @property
    def held_problems(self) -> int:
        """Problems waiting to be shown together when the rate-limit interval ends."""
        return self._held_problems

    def job_finished(
        self,
        status: JobStatus | str,
        summary: str,
        *,
        job_id: str | None = None,
        files_changed: int | None = None,
    ) -> bool:
        """Notify the end of a sync; True if a notification was posted.

        ``files_changed`` (copied + failed) lets a no-op scheduled sync stay silent.
        """
        status = JobStatus(status)
        if status not in (JobStatus.COMPLETED, JobStatus.PARTIAL, JobStatus.FAILED):
            return False
        if job_id is not None and job_id == self._last_job_id:
            return False
        self._last_job_id = job_id
        held = self._take_held()
        if status is JobStatus.FAILED:
            if summary == self._last_failure:
                return False
            self._last_failure = summary
            return self._post(
                "Sync failed",
                self._with_held(f"{summary} Open CelesteOS Desktop to see what to do.", held),
                MessageIcon.Critical,
                problem=True,
            )
        self._last_failure = None
        if status is JobStatus.PARTIAL:
            return self._post(
                "Sync finished with problems",
                self._with_held(f"{summary} {PROBLEMS_HINT}", held),
                MessageIcon.Warning,
                problem=True,
            )
        if files_changed == 0 and not held:
            return False
        return self._post("Sync finished", self._with_held(summary, held), MessageIcon.Information, problem=held > 0)

    def problem(self, title: str, message: str) -> bool:
        """Notify a problem that needs the person (sign-in expired, destination full…)."""
        if self._suppressed():
            return False
        now = self._clock()
        if self._last_problem_at is not None and now - self._last_problem_at < self._interval:
            self._held_problems += 1
            self._latest_held = (title, message)
            if not self._flush_timer.isActive():
                self._flush_timer.start(self._remaining_ms(now))
            return False
        return self._post(title, message, MessageIcon.Warning, problem=True)

    def flush(self) -> bool:
        """Post the held problems as one notification, if the interval has passed."""
        if not self._held_problems or self._last_problem_at is None:
            return False
        now = self._clock()
        if now - self._last_problem_at < self._interval:
            self._flush_timer.start(self._remaining_ms(now))
            return False
        count, latest = self._held_problems, self._latest_held
        self._take_held()
        if count == 1 and latest is not None:
            title, message = latest
        else:
            title = f"{count} more problems need attention"
            message = (f"Latest: {latest[0]} — {latest[1]} " if latest else "") + PROBLEMS_HINT
        return self._post(title, message, MessageIcon.Warning, problem=True)

    # -- internals -----------------------------------------------------------------------------

    def _suppressed(self) -> bool:
        if not self.enabled:
            return True
        if self._foreground is not None:
            return self._foreground()
        return window_is_foreground(self._window)

    def _remaining_ms(self, now: float) -> int:
        last = self._last_problem_at if self._last_problem_at is not None else now
        return max(1, int((self._interval - (now - last)) * 1000))

    def _take_held(self) -> int:
        held = self._held_problems
        self._held_problems = 0
        self._latest_held = None
        self._flush_timer.stop()
        return held

    @staticmethod
    def _with_held(message: str, held: int) -> str:
        if not held:
            return message
        noun = "problem was" if held == 1 else "problems were"
        return f"{message} {held} more {noun} reported meanwhile. {PROBLEMS_HINT}"

    def _post(self, title: str, message: str, kind: QSystemTrayIcon.MessageIcon, *, problem: bool) -> bool:
        if self._suppressed():
            return False
        self._last_was_problem = problem
        if problem:
            # A failed job and a problem right after it are one storm: they share the interval.
            self._last_problem_at = self._clock()
        self._tray.show_message(title, message, kind)
        self.posted.emit(title, message)
        return True

    def _on_message_clicked(self) -> None:
        # Clicking a toast about a problem should land on the list of problems, not the front page.
        if self._last_was_problem:
            self._tray.problems_requested.emit()
        else:
            self._tray.show_requested.emit()
