"""An uncaught exception opens a dialog with a copyable, redacted report instead of a silent exit."""

from __future__ import annotations

import logging
import platform
import sys
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from celeste_desktop import __version__
from celeste_desktop.support.logs import Redactor

log = logging.getLogger(__name__)


def crash_report(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None, redactor: Redactor
) -> str:
    lines = [
        f"CelesteOS Desktop {__version__}",
        f"Python {platform.python_version()} on {platform.platform()}",
        "",
        *traceback.format_exception(exc_type, exc, tb),
    ]
    return redactor.redact("\n".join(line.rstrip("\n") for line in lines))


class CrashDialog(QDialog):
    def __init__(self, report: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("CelesteOS Desktop hit a problem")
        self.setMinimumSize(640, 420)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Something unexpected happened. Your documents and sync progress are safe: the sync resumes "
            "where it stopped. Please copy this report and send it to your CelesteOS support contact."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.report = QPlainTextEdit(report)
        self.report.setReadOnly(True)
        self.report.setAccessibleName("Crash report")
        layout.addWidget(self.report)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy report", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self.copy_report)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def copy_report(self) -> None:
        QApplication.clipboard().setText(self.report.toPlainText())


def install_excepthook(redactor: Redactor, show: Callable[[str], None] | None = None) -> None:
    """Route uncaught exceptions (including those raised inside Qt slots) to the crash dialog."""

    def show_dialog(report: str) -> None:
        CrashDialog(report, QApplication.activeWindow()).exec()

    present = show or show_dialog

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        report = crash_report(exc_type, exc, tb, redactor)
        log.error("Uncaught exception:\n%s", report)
        try:
            present(report)
        except Exception:  # the dialog itself must never turn a crash into a silent exit
            sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = hook
