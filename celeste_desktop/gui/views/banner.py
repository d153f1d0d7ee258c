"""The banner above the progress: why the sync is paused or slowed, and the one button that helps.

One line per reason (several can hold the sync at once: the officer paused it and the link is
down). Reasons the engine reports come and go with ``Paused``/``Resumed``; short-lived notices
(throttling, a service being retried) carry their own expiry. A used-up data budget offers a
second way on, Raise budget…, beside Sync anyway.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QVBoxLayout, QWidget

from celeste_desktop.engine.events import PauseReason

HEADINGS = {
    PauseReason.USER: "Paused",
    PauseReason.THROTTLED: "Slowed down by the service",
    PauseReason.SCHEDULE: "Outside the sync schedule",
    PauseReason.BUDGET: "Data budget used up",
    PauseReason.OFFLINE: "Waiting for the connection",
    PauseReason.SIGN_IN: "Sign-in needed",
    PauseReason.METERED: "Metered network",
    PauseReason.DESTINATION: "Storage not answering",
}
ACTIONS = {
    PauseReason.USER: "Resume",
    PauseReason.SIGN_IN: "Sign in again",
    PauseReason.BUDGET: "Sync anyway",
    PauseReason.METERED: "Sync anyway",
}
# Further buttons of an entry, as (name, text); ``more_requested`` carries the key and the name.
MORE_ACTIONS: dict[PauseReason, tuple[tuple[str, str], ...]] = {
    PauseReason.BUDGET: (("raise", "Raise budget…"),),
}
RAISE_BUDGET = "raise"
_WARNINGS = {PauseReason.SIGN_IN, PauseReason.BUDGET, PauseReason.OFFLINE, PauseReason.DESTINATION}


@dataclass
class _Entry:
    frame: QFrame
    text: QLabel
    button: QPushButton | None
    expires_at: float | None
    more: dict[str, QPushButton] = field(default_factory=dict)


class Banner(QWidget):
    """Hidden when nothing holds the sync; ``action_requested`` carries the entry's key, and
    ``more_requested`` the key and the name of a further button (``MORE_ACTIONS``)."""

    action_requested = Signal(str)
    more_requested = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._column = QVBoxLayout(self)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._entries: dict[str, _Entry] = {}
        self.setAccessibleName("Sync notices")
        self.hide()

    # -- engine pauses ------------------------------------------------------------------------------

    def show_pause(self, reason: PauseReason, message: str, resume_in: float | None = None) -> None:
        self.show_notice(reason.value, HEADINGS.get(reason, "Paused"), message, action=ACTIONS.get(reason),
                         warning=reason in _WARNINGS, more=MORE_ACTIONS.get(reason, ()))  # fmt: skip

    def lift(self, reason: PauseReason) -> None:
        self.remove(reason.value)

    # -- any notice ---------------------------------------------------------------------------------

    def show_notice(
        self, key: str, heading: str, message: str, *, action: str | None = None, expires_at: float | None = None,
        warning: bool = False, more: Sequence[tuple[str, str]] = (),
    ) -> None:  # fmt: skip
        text = f"<b>{html.escape(heading)}</b> — {html.escape(message)}"
        entry = self._entries.get(key)
        same_buttons = entry is not None and (entry.button is None) == (action is None)
        if entry is not None and same_buttons and list(entry.more) == [name for name, _ in more]:
            entry.text.setText(text)
            entry.expires_at = expires_at
            return
        if entry is not None:
            self.remove(key)
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        frame.setAutoFillBackground(True)
        frame.setBackgroundRole(QPalette.ColorRole.AlternateBase)  # a tint that follows light and dark themes
        row = QHBoxLayout(frame)
        icon = QLabel()
        icons = QStyle.StandardPixmap
        pixmap = icons.SP_MessageBoxWarning if warning else icons.SP_MessageBoxInformation
        size = self.fontMetrics().height() * 3 // 2
        icon.setPixmap(self.style().standardIcon(pixmap).pixmap(size, size))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        label = QLabel(text)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setAccessibleName(heading)
        label.setAccessibleDescription(message)
        row.addWidget(icon)
        row.addWidget(label, 1)
        button: QPushButton | None = None
        if action is not None:
            button = QPushButton(action)
            button.setAccessibleName(f"{action}: {heading}")
            button.clicked.connect(lambda: self.action_requested.emit(key))
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)
        extra: dict[str, QPushButton] = {}
        for name, caption in more:
            extra[name] = QPushButton(caption)
            extra[name].setAccessibleName(f"{caption.rstrip('…')}: {heading}")
            extra[name].clicked.connect(lambda _checked=False, name=name: self.more_requested.emit(key, name))
            row.addWidget(extra[name], 0, Qt.AlignmentFlag.AlignVCenter)
        self._column.addWidget(frame)
        self._entries[key] = _Entry(frame, label, button, expires_at, extra)
        self.show()

    def remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._column.removeWidget(entry.frame)
        entry.frame.hide()
        entry.frame.deleteLater()
        self.setVisible(bool(self._entries))

    def expire(self, now: float) -> None:
        for key, entry in list(self._entries.items()):
            if entry.expires_at is not None and now >= entry.expires_at:
                self.remove(key)

    def clear(self) -> None:
        for key in list(self._entries):
            self.remove(key)

    # -- reading (tests, tray tooltip) -----------------------------------------------------------------

    def shown(self) -> list[str]:
        return list(self._entries)

    def text(self, key: str) -> str:
        entry = self._entries.get(key)
        return entry.text.text() if entry is not None else ""

    def button(self, key: str, name: str | None = None) -> QPushButton | None:
        """The entry's main button, or the further one called ``name``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        return entry.button if name is None else entry.more.get(name)
