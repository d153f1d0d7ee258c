"""The main window: header (account, yacht, connection), the folder tree with ticks, the sync
controls, overall progress, the pause banner, and the Transfers / History / Problems tabs.

The window only lays widgets out and says what it shows; ``gui.controller`` feeds it and reacts
to its buttons. Sizes come from layouts and font metrics, never fixed pixels, so nothing is
clipped at 150 % scaling; colours come from the palette, so it follows the OS theme.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from celeste_desktop import __version__
from celeste_desktop.gui.folder_model import FolderSource
from celeste_desktop.gui.folder_view import FolderPicker
from celeste_desktop.gui.views.banner import Banner
from celeste_desktop.gui.views.history import HistoryView
from celeste_desktop.gui.views.problems import ProblemsView
from celeste_desktop.gui.views.summary import ProgressPanel, SummaryPanel
from celeste_desktop.gui.views.transfers import TransfersModel, TransfersView

APP_NAME = "CelesteOS Desktop"


@dataclass(frozen=True)
class HeaderState:
    account: str | None
    yacht_id: str | None
    connection: str  # a short phrase: "Not connected", "Connected", "Offline — waiting for the connection"
    demo: bool = False
    signed_in: bool = False


class MainWindow(QMainWindow):
    def __init__(
        self,
        source: FolderSource,
        header: HeaderState,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME + (" — demo (simulated tenant)" if header.demo else ""))
        self.setAccessibleName(APP_NAME)
        root = QWidget()
        layout = QVBoxLayout(root)
        layout.addWidget(self._build_header())
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self._build_tree(source, loop))
        self.splitter.addWidget(self._build_activity())
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(root)
        self.version_label = QLabel(
            f"Version {__version__}" + (" · demo mode: nothing leaves this computer" if header.demo else "")
        )
        self.statusBar().addPermanentWidget(self.version_label)
        self.set_header(header)
        self.set_sync_controls(running=False, paused=False, can_sync=False, why_not="Connect first.")
        self._initial_size()

    def _initial_size(self) -> None:
        """A size in text units (the same layout at 100 % and 150 %), within the screen."""
        metrics = self.fontMetrics()
        width, height = metrics.averageCharWidth() * 200, metrics.height() * 44
        screen = self.screen()
        if screen is not None and QGuiApplication.platformName() != "offscreen":
            available = screen.availableGeometry()
            width, height = min(width, available.width() * 9 // 10), min(height, available.height() * 9 // 10)
        self.resize(width, height)
        # The tree pane gets at least what the drive chooser and the tree's columns need.
        left = min(max(width * 2 // 5, self.picker.sizeHint().width()), width // 2)
        self.splitter.setSizes([left, width - left])

    # -- building ---------------------------------------------------------------------------------

    def _build_header(self) -> QWidget:
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(frame)
        title = QLabel(f"<b>{APP_NAME}</b>")
        title.setAccessibleName(APP_NAME)
        self.account_label = QLabel()
        self.account_label.setAccessibleName("Signed-in account")
        self.account_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.yacht_label = QLabel()
        self.yacht_label.setAccessibleName("Yacht")
        self.yacht_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.connection_label = QLabel()
        self.connection_label.setAccessibleName("Connection state")
        self.connect_button = QPushButton("&Connect…")
        self.connect_button.setAccessibleName("Connect to Microsoft 365")
        self.connect_button.setToolTip("Sign in to Microsoft 365 to list and copy the yacht's documents")
        self.settings_button = QPushButton("S&ettings…")
        self.settings_button.setAccessibleName("Open the settings")
        for widget in (title, self.account_label, self.yacht_label, self.connection_label):
            row.addWidget(widget)
            row.addSpacing(metrics_spacing(self))
        row.addStretch(1)
        row.addWidget(self.connect_button)
        row.addWidget(self.settings_button)
        return frame

    def _build_tree(self, source: FolderSource, loop: asyncio.AbstractEventLoop | None) -> QWidget:
        box = QGroupBox("Folders to copy")
        column = QVBoxLayout(box)
        self.picker = FolderPicker(source, loop=loop)
        # Leave room for the count, size and urgent columns in a pane of this window's width.
        self.picker.view.header().resizeSection(0, self.fontMetrics().averageCharWidth() * 30)
        column.addWidget(self.picker, 1)
        self.tree_hint = QLabel("Connect to Microsoft 365 to choose the folders to copy.")
        self.tree_hint.setWordWrap(True)
        self.tree_hint.setAccessibleName("Folder tree hint")
        column.addWidget(self.tree_hint)
        return box

    def _build_activity(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.banner = Banner()
        column.addWidget(self.banner)
        buttons = QHBoxLayout()
        self.sync_button = QPushButton("&Sync now")
        self.sync_button.setAccessibleName("Sync now")
        self.sync_button.setShortcut(QKeySequence(Qt.Key.Key_F5))
        self.pause_button = QPushButton("&Pause")
        self.pause_button.setAccessibleName("Pause the sync")
        self.pause_button.setToolTip("Stop at once; Resume continues where it stopped")
        self.resume_button = QPushButton("&Resume")
        self.resume_button.setAccessibleName("Resume the sync")
        self.cancel_button = QPushButton("Cance&l")
        self.cancel_button.setAccessibleName("Cancel the sync")
        self.cancel_button.setToolTip("End this sync; the next one continues where it stopped")
        for button in (self.sync_button, self.pause_button, self.resume_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        column.addLayout(buttons)
        self.progress = ProgressPanel()
        column.addWidget(self.progress)
        self.summary = SummaryPanel()
        column.addWidget(self.summary)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Activity")
        self.transfers_model = TransfersModel(self)
        self.transfers = TransfersView(self.transfers_model)
        self.history = HistoryView()
        self.problems = ProblemsView()
        self.tabs.addTab(self.transfers, "&Transfers")
        self.tabs.addTab(self.history, "&History")
        self.tabs.addTab(self.problems, "Pro&blems")
        self.tabs.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        column.addWidget(self.tabs, 1)
        return box

    # -- showing ------------------------------------------------------------------------------------

    def set_header(self, header: HeaderState) -> None:
        self.account_label.setText(f"Account: {header.account or 'not signed in'}")
        self.yacht_label.setText(f"Yacht: {header.yacht_id or 'not set'}")
        self.connection_label.setText(header.connection)
        self.connect_button.setVisible(not header.signed_in)

    def set_sync_controls(self, *, running: bool, paused: bool, can_sync: bool, why_not: str = "") -> None:
        self.sync_button.setEnabled(can_sync and not running)
        self.sync_button.setToolTip(
            "Copy what changed in the ticked folders now (F5)" if can_sync else why_not or "Nothing to sync yet."
        )
        self.pause_button.setEnabled(running and not paused)
        self.resume_button.setEnabled(running and paused)
        self.cancel_button.setEnabled(running)

    def set_problem_count(self, count: int) -> None:
        self.tabs.setTabText(self.tabs.indexOf(self.problems), f"Pro&blems ({count})" if count else "Pro&blems")

    def show_status(self, text: str, milliseconds: int = 0) -> None:
        self.statusBar().showMessage(text, milliseconds)


def metrics_spacing(widget: QWidget) -> int:
    """Space between header items: about two characters at the current font and scale."""
    return widget.fontMetrics().averageCharWidth() * 2
