"""Shows engine and retry-policy events in the main window: progress, transfers, the banner,
and the short status the header and the tray show. It keeps which reasons hold the sync."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from celeste_desktop.engine.events import Event, JobPlanned, Paused, PauseReason, Resumed
from celeste_desktop.gui.views.banner import HEADINGS
from celeste_desktop.net.policy import BackingOff, PolicyEvent, Recovered, Throttled

if TYPE_CHECKING:
    from celeste_desktop.gui.main_window import MainWindow

_PROBLEMS = {PauseReason.SIGN_IN, PauseReason.BUDGET, PauseReason.DESTINATION}


class EventPresenter:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.reasons: dict[PauseReason, str] = {}  # what holds the sync now, with the engine's words
        self._dry_jobs: set[str] = set()

    def is_dry_run(self, job_id: str) -> bool:
        return job_id in self._dry_jobs

    def apply(self, batch: Sequence[Event | PolicyEvent], now: float) -> None:
        engine_events = [e for e in batch if not isinstance(e, Throttled | BackingOff | Recovered)]
        self.window.progress.apply(engine_events)
        self.window.transfers_model.apply(engine_events, now)
        banner = self.window.banner
        for event in batch:
            if isinstance(event, Paused):
                self.reasons[event.reason] = event.message
                banner.show_pause(event.reason, event.message, event.resume_in_seconds)
            elif isinstance(event, Resumed):
                self.reasons.pop(event.reason, None)
                banner.lift(event.reason)
            elif isinstance(event, JobPlanned) and event.dry_run:
                self._dry_jobs.add(event.job_id)
            elif isinstance(event, Throttled):
                banner.show_notice(
                    f"throttled:{event.service}", HEADINGS[PauseReason.THROTTLED],
                    f"{event.service} asked us to wait {event.seconds:.0f} s ({event.reason}); the sync continues "
                    "by itself.", expires_at=now + max(2.0, event.seconds),
                )  # fmt: skip
            elif isinstance(event, BackingOff):
                banner.show_notice(
                    f"retry:{event.service}", f"{event.service} is not answering",
                    f"{event.reason}. Trying again in {event.delay:.0f} s (attempt {event.attempt}).",
                    expires_at=now + max(3.0, event.delay + 1.0), warning=True,
                )  # fmt: skip
            elif isinstance(event, Recovered):
                banner.remove(f"retry:{event.service}")
        self.window.transfers_model.set_paused(bool(self.reasons))

    def connection(self, otherwise: str) -> str:
        """The header's connection phrase: a lost sign-in or link wins over ``otherwise``."""
        if PauseReason.SIGN_IN in self.reasons:
            return "Sign-in needed"
        if PauseReason.OFFLINE in self.reasons:
            return "Offline — waiting for the connection"
        return otherwise

    def status(self, *, running: bool, signed_in: bool) -> tuple[str, str]:
        """(tray state, one line): the state is a value of ``gui.icons.TrayState``."""
        if self.reasons:
            reason, message = next(iter(self.reasons.items()))
            state = "offline" if reason is PauseReason.OFFLINE else "problem" if reason in _PROBLEMS else "paused"
            return state, f"{HEADINGS.get(reason, 'Paused')}: {message}"
        if running:
            progress = self.window.progress
            return "syncing", f"Syncing: {progress.files_done} of {progress.files_total} files"
        if not signed_in:
            return "problem", "Not connected: open the window and press Connect."
        return "idle", self.window.summary.label.text()
