"""The system-tray icon: state at a glance, a one-line tooltip, and a menu whose actions are signals.

``TrayController`` decides nothing itself: the app's controller connects its signals to the
window and the engine. When the platform has no tray (some Linux desktops, offscreen test
runs) no ``QSystemTrayIcon`` is created, ``available`` is False and everything else still
works, so the app keeps running with its window; :meth:`show_message` then returns False and
the caller shows the text elsewhere.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from celeste_desktop.gui.icons import TrayState, state_icon

__all__ = ["TrayController", "TrayState"]

APP_NAME = "CelesteOS Desktop"
# Windows keeps at most 127 characters of a tray tooltip (NOTIFYICONDATA.szTip).
TOOLTIP_LIMIT = 127
PAUSE_LABEL = "Pause syncing"
RESUME_LABEL = "Resume syncing"


def one_line(text: str, limit: int) -> str:
    """Collapse whitespace to single spaces and cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class TrayController(QObject):
    """The tray icon and its menu; every menu action is a signal for the controller to act on."""

    show_requested = Signal()
    sync_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    problems_requested = Signal()
    quit_requested = Signal()
    message_clicked = Signal()  # the user clicked the last notification balloon

    def __init__(self, parent: QObject | None = None, *, available: bool | None = None) -> None:
        """``available`` overrides ``QSystemTrayIcon.isSystemTrayAvailable()`` (tests)."""
        super().__init__(parent)
        self.available = QSystemTrayIcon.isSystemTrayAvailable() if available is None else available
        self._state = TrayState.IDLE
        self._text = "Starting…"
        self._icons: dict[TrayState, QIcon] = {}

        self.menu = QMenu()
        self.menu.setAccessibleName(f"{APP_NAME} tray menu")
        # A disabled first line repeats the status: tooltips are hard to reach by keyboard.
        self.status_action = QAction(self._text, self.menu)
        self.status_action.setEnabled(False)
        self.open_action = QAction(f"Open {APP_NAME}", self.menu)
        self.sync_action = QAction("Sync now", self.menu)
        self.pause_action = QAction(PAUSE_LABEL, self.menu)
        self.problems_action = QAction("Open Problems…", self.menu)
        self.quit_action = QAction("Quit", self.menu)
        self.menu.addAction(self.status_action)
        self.menu.addSeparator()
        for action in (self.open_action, self.sync_action, self.pause_action, self.problems_action):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.menu.setDefaultAction(self.open_action)

        self.open_action.triggered.connect(self.show_requested)
        self.sync_action.triggered.connect(self.sync_requested)
        self.pause_action.triggered.connect(self._pause_or_resume)
        self.problems_action.triggered.connect(self.problems_requested)
        self.quit_action.triggered.connect(self.quit_requested)

        self.icon: QSystemTrayIcon | None = None
        if self.available:
            self.icon = QSystemTrayIcon(self._icon_for(self._state), self)
            self.icon.setContextMenu(self.menu)
            self.icon.activated.connect(self._on_activated)
            self.icon.messageClicked.connect(self.message_clicked)
        self.set_state(self._state, self._text)

    # -- public surface ------------------------------------------------------------------------

    @property
    def state(self) -> TrayState:
        return self._state

    @property
    def text(self) -> str:
        return self._text

    @property
    def tooltip(self) -> str:
        return one_line(f"{APP_NAME} — {self._text}", TOOLTIP_LIMIT)

    def current_icon(self) -> QIcon:
        return self._icon_for(self._state)

    def set_state(self, state: TrayState, text: str) -> None:
        """Show ``state`` in the icon, ``text`` (one line, e.g. "Copying 12 of 40 files") in the tooltip."""
        self._state = state
        self._text = one_line(text, TOOLTIP_LIMIT)
        self.status_action.setText(self._text)
        paused = state is TrayState.PAUSED
        self.pause_action.setText(RESUME_LABEL if paused else PAUSE_LABEL)
        # A running sync cannot be started again; everything else stays reachable.
        self.sync_action.setEnabled(state is not TrayState.SYNCING)
        if self.icon is not None:
            self.icon.setIcon(self._icon_for(state))
            self.icon.setToolTip(self.tooltip)

    def show(self) -> None:
        if self.icon is not None:
            self.icon.show()

    def hide(self) -> None:
        if self.icon is not None:
            self.icon.hide()

    def show_message(
        self,
        title: str,
        message: str,
        kind: QSystemTrayIcon.MessageIcon = QSystemTrayIcon.MessageIcon.Information,
        msecs: int = 10_000,
    ) -> bool:
        """Pop a desktop notification; False when there is no visible tray icon to show it from."""
        if self.icon is None or not self.icon.isVisible() or not QSystemTrayIcon.supportsMessages():
            return False
        # Windows cuts titles at 63 characters and bodies at 255.
        self.icon.showMessage(one_line(title, 63), one_line(message, 255), kind, msecs)
        return True

    # -- internals -----------------------------------------------------------------------------

    def _icon_for(self, state: TrayState) -> QIcon:
        if state not in self._icons:
            self._icons[state] = state_icon(state)
        return self._icons[state]

    def _pause_or_resume(self) -> None:
        if self._state is TrayState.PAUSED:
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        # On macOS a click opens the menu; opening the window as well would fight it.
        single_click = reason is QSystemTrayIcon.ActivationReason.Trigger and sys.platform != "darwin"
        if single_click or reason is QSystemTrayIcon.ActivationReason.DoubleClick:
            self.show_requested.emit()
