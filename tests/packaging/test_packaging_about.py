"""The About box shows the single-sourced version, the Python and Qt versions, and copies them."""

from __future__ import annotations

import platform

import pytest
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from celeste_desktop import __version__
from celeste_desktop.gui.about import AboutDialog, details_text
from celeste_desktop.gui.self_test import clipped_labels

pytestmark = pytest.mark.gui


def label_texts(dialog: AboutDialog) -> str:
    return "\n".join(label.text() for label in dialog.findChildren(QLabel))


def test_about_box_names_the_app_and_every_version(qtbot: QtBot) -> None:
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    text = label_texts(dialog)
    assert "CelesteOS Desktop" in dialog.windowTitle()
    assert f"Version {__version__}" in text
    assert f"Python: {platform.python_version()}" in text
    assert qVersion() in text
    assert "LGPL" in text, "Qt's licence is named"
    assert "celeste-desktop diagnostics" in text, "says how to make a diagnostics file"


def test_copy_details_puts_plain_text_on_the_clipboard(qtbot: QtBot) -> None:
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    dialog.copy_button.click()
    copied = QApplication.clipboard().text()
    assert copied == details_text()
    assert copied.splitlines()[:2] == ["CelesteOS Desktop", f"Version: {__version__}"]
    assert "<" not in copied, "no markup in what lands in an e-mail"
    assert dialog.copy_button.text() == "Copied"


def test_no_label_is_clipped(qtbot: QtBot) -> None:
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert clipped_labels(dialog) == []
