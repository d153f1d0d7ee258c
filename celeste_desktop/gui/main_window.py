"""The main window: header (account, yacht, connection), folder tree, progress, and activity."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QVBoxLayout,
    QWidget,
)

from celeste_desktop import __version__


@dataclass(frozen=True)
class HeaderState:
    account: str | None
    yacht_id: str | None
    connection: str  # a short phrase: "Not connected", "Connected", "Offline — showing last known state"
    demo: bool = False


class MainWindow(QMainWindow):
    def __init__(self, header: HeaderState) -> None:
        super().__init__()
        self.setWindowTitle("CelesteOS Desktop" + (" — demo (simulated tenant)" if header.demo else ""))
        self.resize(1100, 720)
        root = QWidget()
        layout = QVBoxLayout(root)
        layout.addWidget(self._build_header())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_tree())
        splitter.addWidget(self._build_progress())
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(root)
        self.statusBar().showMessage(
            f"Version {__version__}" + (" · demo mode: nothing leaves this computer" if header.demo else "")
        )
        self.set_header(header)

    def _build_header(self) -> QWidget:
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(frame)
        title = QLabel("<b>CelesteOS Desktop</b>")
        self.account_label = QLabel()
        self.account_label.setAccessibleName("Signed-in account")
        self.yacht_label = QLabel()
        self.yacht_label.setAccessibleName("Yacht")
        self.connection_label = QLabel()
        self.connection_label.setAccessibleName("Connection state")
        self.connect_button = QPushButton("Connect…")
        self.connect_button.setAccessibleName("Connect to Microsoft 365")
        for widget in (title, self.account_label, self.yacht_label, self.connection_label):
            row.addWidget(widget)
            row.addSpacing(12)
        row.addStretch(1)
        row.addWidget(self.connect_button)
        return frame

    def _build_tree(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.addWidget(QLabel("<b>Folders to copy</b>"))
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Folder", "Files", "Size"])
        self.tree.setAccessibleName("OneDrive folders")
        column.addWidget(self.tree, 1)
        self.tree_hint = QLabel("Connect to Microsoft 365 to choose the folders to copy.")
        self.tree_hint.setWordWrap(True)
        column.addWidget(self.tree_hint)
        return box

    def _build_progress(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        buttons = QHBoxLayout()
        self.sync_button = QPushButton("Sync now")
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        for button in (self.sync_button, self.pause_button, self.cancel_button):
            button.setEnabled(False)
            buttons.addWidget(button)
        self.sync_button.setToolTip("Connect and choose folders first")
        buttons.addStretch(1)
        column.addLayout(buttons)
        self.overall = QProgressBar()
        self.overall.setAccessibleName("Overall progress")
        self.overall.setFormat("%p% — idle")
        column.addWidget(self.overall)
        self.rate_label = QLabel("No sync running.")
        column.addWidget(self.rate_label)
        tabs = QTabWidget()
        self.transfers = QTreeWidget()
        self.transfers.setHeaderLabels(["File", "Progress", "Status"])
        tabs.addTab(self.transfers, "Transfers")
        self.history = QTreeWidget()
        self.history.setHeaderLabels(["Started", "Result", "Files", "Data"])
        tabs.addTab(self.history, "History")
        self.problems = QTreeWidget()
        self.problems.setHeaderLabels(["File", "Problem", "What to do"])
        tabs.addTab(self.problems, "Problems")
        column.addWidget(tabs, 1)
        return box

    def set_header(self, header: HeaderState) -> None:
        self.account_label.setText(f"Account: {header.account or 'not signed in'}")
        self.yacht_label.setText(f"Yacht: {header.yacht_id or 'not set'}")
        self.connection_label.setText(header.connection)
