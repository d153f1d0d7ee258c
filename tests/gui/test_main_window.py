import sys

from pytestqt.qtbot import QtBot

from celeste_desktop.gui.crash import CrashDialog, crash_report, install_excepthook
from celeste_desktop.gui.main_window import HeaderState, MainWindow
from celeste_desktop.support.logs import Redactor


def test_header_shows_account_yacht_and_connection(qtbot: QtBot) -> None:
    window = MainWindow(HeaderState(account=None, yacht_id=None, connection="Not connected"))
    qtbot.addWidget(window)
    window.show()
    assert window.account_label.text() == "Account: not signed in"
    assert window.yacht_label.text() == "Yacht: not set"
    window.set_header(HeaderState("officer@yacht.example", "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f", "Connected"))
    assert window.account_label.text() == "Account: officer@yacht.example"
    assert window.connection_label.text() == "Connected"
    assert not window.sync_button.isEnabled(), "nothing to sync before folders are chosen"


def test_uncaught_exception_becomes_a_redacted_copyable_report(qtbot: QtBot) -> None:
    shown: list[str] = []
    redactor = Redactor()
    redactor.add_secret("yacht-key-0123456789")
    previous = sys.excepthook
    install_excepthook(redactor, show=shown.append)
    try:
        try:
            raise ValueError("boom with yacht-key-0123456789")
        except ValueError:
            sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    finally:
        sys.excepthook = previous
    assert len(shown) == 1
    assert "ValueError: boom with «redacted»" in shown[0]
    dialog = CrashDialog(shown[0])
    qtbot.addWidget(dialog)
    dialog.copy_report()
    from PySide6.QtWidgets import QApplication

    assert "ValueError" in QApplication.clipboard().text()


def test_report_names_version_and_platform() -> None:
    try:
        raise RuntimeError("x")
    except RuntimeError as exc:
        text = crash_report(RuntimeError, exc, exc.__traceback__, Redactor())
    assert text.startswith("CelesteOS Desktop ")
