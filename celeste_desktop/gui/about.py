"""The About box: name, version, Python and Qt versions, licence note, and where support help lives.

The version shown is ``celeste_desktop.__version__``, the one source every package build and
``--version`` read too. "Copy details" puts the same facts on the clipboard as plain text, for
an e-mail to support.
"""

from __future__ import annotations

import platform
import sys

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from celeste_desktop import __version__
from celeste_desktop.gui.icons import app_icon

APP_NAME = "CelesteOS Desktop"
LICENCE_NOTE = (
    "© CelesteOS. Proprietary software, licensed to the vessel's operator. "
    "It uses Qt through PySide6 under the GNU LGPL version 3, and other open-source components "
    "under their own licences (Python Software Foundation, MIT, BSD, Apache 2.0, MPL 2.0)."
)
DIAGNOSTICS_HINT = (
    "Asking for help? Send your support contact the version details (Copy details) and a "
    "diagnostics file: it holds logs, settings and a summary of the sync state, with every "
    "secret removed. From a command prompt: celeste-desktop diagnostics celeste-diagnostics.zip"
)


def version_details() -> list[tuple[str, str]]:
    """``(label, value)`` pairs shown in the box and copied by "Copy details"."""
    build = "installed bundle" if getattr(sys, "frozen", False) else "from source"
    return [
        ("Version", __version__),
        ("Build", build),
        ("Python", platform.python_version()),
        ("Qt", f"{qVersion()} (PySide6 {PySide6.__version__})"),
        ("System", f"{platform.platform()} ({platform.machine()})"),
    ]


def details_text() -> str:
    """The plain-text block for the clipboard."""
    return "\n".join([APP_NAME, *(f"{label}: {value}" for label, value in version_details())])


class AboutDialog(QDialog):
    """Modal About box; ``exec()`` it, or ``open()`` it from a menu action."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.setAccessibleName(f"About {APP_NAME}")
        self.setMinimumWidth(460)
        icon = app_icon()
        self.setWindowIcon(icon)

        header = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(icon.pixmap(64, 64))
        logo.setAccessibleName("CelesteOS logo")
        header.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        title = QLabel(f"<b style='font-size:large'>{APP_NAME}</b><br>Version {__version__}")
        title.setTextFormat(Qt.TextFormat.RichText)
        title.setAccessibleName("Name and version")
        header.addWidget(title, 1)

        self.details = QLabel("<br>".join(f"{label}: {value}" for label, value in version_details()[1:]))
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setWordWrap(True)
        self.details.setAccessibleName("Version details")

        licence = QLabel(LICENCE_NOTE)
        licence.setWordWrap(True)
        licence.setAccessibleName("Licence")
        hint = QLabel(DIAGNOSTICS_HINT)
        hint.setWordWrap(True)
        hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        hint.setAccessibleName("Getting help")

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy details", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_details)
        about_qt = buttons.addButton("About Qt", QDialogButtonBox.ButtonRole.HelpRole)
        # The LGPL asks that people can find out which Qt they run and where its source is.
        about_qt.clicked.connect(lambda: QMessageBox.aboutQt(self, "About Qt"))
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.details)
        layout.addWidget(licence)
        layout.addWidget(hint)
        layout.addWidget(buttons)

    def copy_details(self) -> None:
        QApplication.clipboard().setText(details_text())
        self.copy_button.setText("Copied")
