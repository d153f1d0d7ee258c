"""The main window on its own (offscreen): header, accessible names, keyboard, the banner, the
transfers list with its progress bars, the progress panel, no clipped text at 100 % and 150 %,
and the crash dialog."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QRect, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QApplication, QComboBox, QProgressBar, QWidget
from pytestqt.qtbot import QtBot

from celeste_desktop.domain.models import ActionKind, Drive, FileProblem, FileProblemKind, Job, JobCounters, JobStatus
from celeste_desktop.engine.events import (
    FileDone,
    FileFailed,
    FileProgress,
    FileStarted,
    JobFinished,
    JobPlanned,
    Paused,
    PauseReason,
    Resumed,
    Throughput,
)
from celeste_desktop.gui.crash import CrashDialog, crash_report, install_excepthook
from celeste_desktop.gui.main_window import HeaderState, MainWindow
from celeste_desktop.gui.self_test import clipped_in_any_tab
from celeste_desktop.gui.views.presenter import EventPresenter
from celeste_desktop.gui.views.transfers import Column
from celeste_desktop.net.policy import BackingOff, Recovered, Throttled
from celeste_desktop.support.logs import Redactor

YACHT = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"


class NoFolders:
    async def list_children(self, drive_id: str, item_id: str) -> list[object]:
        return []

    async def list_drives(self) -> list[Drive]:
        return []


def sample_window() -> MainWindow:
    """A window showing a sync in progress, a pause, history and problems (no services)."""
    window = MainWindow(NoFolders(), HeaderState("officer@yacht.example", YACHT, "Connected", signed_in=True))  # type: ignore[arg-type]
    events = [
        JobPlanned("job", 40, 50_000_000, skipped=2),
        FileStarted("job", "a", "04_MANUALS/Main Engines/MTU 16V 4000 M73L Operating Manual.pdf", 9_000_000,
                    ActionKind.UPLOAD),
        FileProgress("job", "a", "04_MANUALS/Main Engines/MTU 16V 4000 M73L Operating Manual.pdf", "upload",
                     4_000_000, 9_000_000),
        FileStarted("job", "b", "01_BRIDGE/Navigation/Passage Plan.docx", 30_000, ActionKind.UPLOAD),
        Throughput("job", 12, 40, 20_000_000, 50_000_000, 180_000.0, 170.0),
        Paused(PauseReason.OFFLINE, "Supabase could not be reached. Waiting for the connection; the sync "
                                    "continues by itself."),
    ]  # fmt: skip
    window.progress.apply(events)
    window.transfers_model.apply(events, 0.0)
    window.banner.show_pause(PauseReason.OFFLINE, "Waiting for the connection; the sync continues by itself.")
    started = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    window.history.set_jobs([
        Job("j2", JobStatus.PARTIAL, started, started + timedelta(minutes=42), JobCounters(120, 117, 1, 2, 0, 9 << 20)),
        Job("j1", JobStatus.COMPLETED, started - timedelta(days=1), started - timedelta(days=1, minutes=-3)),
    ])  # fmt: skip
    window.problems.set_problems([
        FileProblem("d", "n", "01_BRIDGE/Bridge Notebook", FileProblemKind.SKIPPED, "onenote",
                    "OneNote notebooks have no downloadable file.", web_url="https://example.test/n"),
        FileProblem("d", "x", "04_MANUALS/Old/scan.tif", FileProblemKind.DEAD_LETTER, "IntegrityError",
                    "The downloaded bytes did not match.", attempts=10),
    ])  # fmt: skip
    window.set_problem_count(2)
    window.set_sync_controls(running=True, paused=False, can_sync=True)
    return window


def test_header_shows_account_yacht_and_connection(qtbot: QtBot) -> None:
    window = MainWindow(NoFolders(), HeaderState(None, None, "Not connected"))  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    assert window.account_label.text() == "Account: not signed in"
    assert window.yacht_label.text() == "Yacht: not set"
    assert window.connect_button.isVisible()
    window.set_header(HeaderState("officer@yacht.example", YACHT, "Connected", signed_in=True))
    assert window.account_label.text() == "Account: officer@yacht.example"
    assert window.yacht_label.text() == f"Yacht: {YACHT}"
    assert window.connection_label.text() == "Connected"
    assert not window.connect_button.isVisible()
    assert not window.sync_button.isEnabled(), "nothing to sync before folders are chosen"
    assert window.sync_button.toolTip() == "Connect first."


def test_every_interactive_widget_has_an_accessible_name(qtbot: QtBot) -> None:
    window = sample_window()
    qtbot.addWidget(window)
    window.show()
    kinds = (QAbstractButton, QAbstractItemView, QComboBox, QProgressBar)
    unnamed = [
        f"{type(widget).__name__} {getattr(widget, 'text', lambda: '')()!r}"
        for widget in window.findChildren(QWidget)
        if isinstance(widget, kinds)
        and widget.isVisibleTo(window)
        and not widget.accessibleName()
        and type(widget).__name__ not in ("QTabBar", "QHeaderView")  # parts of a named tab widget or view
    ]
    assert unnamed == []


def test_keyboard_reaches_and_presses_the_controls(qtbot: QtBot) -> None:
    window = sample_window()
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    window.picker.view.setFocus()
    seen = set()
    for _ in range(40):
        qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Tab)
        seen.add(QApplication.focusWidget())
    assert {window.picker.drive_combo, window.pause_button, window.cancel_button, window.transfers} <= seen
    pressed: list[str] = []
    window.pause_button.clicked.connect(lambda: pressed.append("pause"))
    window.pause_button.setFocus()
    qtbot.keyClick(window.pause_button, Qt.Key.Key_Space)
    assert pressed == ["pause"]
    # Alt+letter mnemonics, one letter per button (the offscreen platform cannot press them).
    buttons = [w for w in window.findChildren(QAbstractButton) if "&" in w.text()]
    letters = [w.text()[w.text().index("&") + 1].lower() for w in buttons]
    assert len(letters) == len(set(letters)), sorted(letters)
    assert window.sync_button.shortcut().toString() == "F5"


def test_banner_offers_the_action_for_each_reason(qtbot: QtBot) -> None:
    window = MainWindow(NoFolders(), HeaderState(None, None, "Connected"))  # type: ignore[arg-type]
    qtbot.addWidget(window)
    banner = window.banner
    assert not banner.isVisibleTo(window)
    actions = {PauseReason.USER: "Resume", PauseReason.SIGN_IN: "Sign in again", PauseReason.BUDGET: "Sync anyway",
               PauseReason.METERED: "Sync anyway", PauseReason.OFFLINE: None, PauseReason.SCHEDULE: None}  # fmt: skip
    for reason in actions:
        banner.show_pause(reason, f"message for {reason.value}")
    for reason, label in actions.items():
        button = banner.button(reason.value)
        assert (button.text() if button else None) == label
        assert f"message for {reason.value}" in banner.text(reason.value)
    requested: list[str] = []
    banner.action_requested.connect(requested.append)
    sign_in = banner.button("sign_in")
    assert sign_in is not None
    sign_in.click()
    assert requested == ["sign_in"]
    for reason in actions:
        banner.lift(reason)
    assert banner.shown() == [] and not banner.isVisibleTo(window)
    banner.show_notice("throttled:graph", "Slowed down", "wait 3 s", expires_at=10.0)
    banner.expire(9.0)
    assert banner.shown() == ["throttled:graph"]
    banner.expire(10.0)
    assert banner.shown() == []


def test_transfers_come_and_go_with_their_own_progress(qtbot: QtBot) -> None:
    window = sample_window()
    qtbot.addWidget(window)
    model = window.transfers_model
    assert [row.item_id for row in model.rows()] == ["a", "b"]
    big = model.transfer("a")
    assert big is not None and abs(big.fraction - (0.5 + 4 / 9 / 2)) < 1e-9
    assert model.index(0, Column.PROGRESS).data() == "72%"
    model.apply([FileDone("job", "a", "x", ActionKind.UPLOAD, 9_000_000),
                 FileFailed("job", "b", "y", "Supabase refused it.", will_retry=True)], 100.0)  # fmt: skip
    assert [row.status for row in model.rows()] == ["Done", "Will retry"]
    assert model.sweep(100.5) == 0, "finished rows linger a moment"
    assert model.sweep(102.0) == 2 and model.rowCount() == 0
    model.apply([FileStarted("job", "c", "c.pdf", 10, ActionKind.UPLOAD)], 103.0)
    model.set_paused(True)
    model.apply([FileProgress("job", "c", "c.pdf", "download", 5, 10)], 103.5)
    assert model.rows()[0].status == "Paused", "a progress report after the pause does not unpause the row"
    model.set_paused(False)
    assert model.rows()[0].status == "Waiting"
    model.apply([JobFinished("job", JobStatus.CANCELLED, JobCounters(), "Cancelled")], 104.0)
    assert model.rows()[0].status == "Stopped"


def test_the_progress_cell_shows_a_bar(qtbot: QtBot) -> None:
    window = sample_window()
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.show()
    view = window.transfers
    # Painted by Qt itself (the cell's background): a repaint runs no Python per row.
    assert view.itemDelegateForColumn(Column.PROGRESS) is None
    rect = view.visualRect(window.transfers_model.index(0, Column.PROGRESS))
    image = view.viewport().grab().toImage()
    ratio = image.devicePixelRatio()
    rect = QRect(*(round(value * ratio) for value in (rect.x(), rect.y(), rect.width(), rect.height())))
    left = image.pixelColor(rect.left() + rect.width() // 10, rect.center().y())
    right = image.pixelColor(rect.right() - rect.width() // 10, rect.center().y())
    assert left != right, "the filled part of the bar differs from the empty part"
    view.header().resizeSection(Column.PROGRESS, 300)
    assert window.transfers_model.bar_width == 300, "a wider column gets bars drawn to its width"


def test_progress_panel_counts_files_and_bytes(qtbot: QtBot) -> None:
    window = sample_window()
    qtbot.addWidget(window)
    panel = window.progress
    assert panel.files_bar.format() == "12 of 40 files"
    assert panel.bytes_bar.value() == 400
    assert "175.8 KB/s" in panel.rate_label.text() and "about 3 min" in panel.rate_label.text()
    panel.apply([JobFinished("job", JobStatus.COMPLETED, JobCounters(), "done")])
    assert panel.bytes_bar.value() == 1000 and panel.phase_label.text() == "Finished."


def test_no_label_is_clipped_at_100_percent(qtbot: QtBot) -> None:
    window = sample_window()
    qtbot.addWidget(window)
    window.show()
    QCoreApplication.processEvents()
    window.problems.select_row(1)
    assert clipped_in_any_tab(window) == []


SCALED = textwrap.dedent(
    """
    import sys
    from PySide6.QtWidgets import QApplication
    sys.path.insert(0, sys.argv[1])
    app = QApplication([])
    from test_main_window import sample_window
    from celeste_desktop.gui.self_test import clipped_in_any_tab
    window = sample_window()
    window.show()
    window.problems.select_row(1)
    app.processEvents()
    pixmap = window.grab()
    pixmap.save(sys.argv[2])
    print(pixmap.devicePixelRatio(), window.width())
    print("CLIPPED", clipped_in_any_tab(window))
    """
)


def test_no_label_is_clipped_at_150_percent(tmp_path: Path) -> None:
    shot = tmp_path / "main-window-150.png"
    env = {**os.environ, "QT_SCALE_FACTOR": "1.5", "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", SCALED, str(Path(__file__).parent), str(shot)], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    ratio, width = result.stdout.split("\n")[0].split()
    assert float(ratio) == 1.5
    assert "CLIPPED []" in result.stdout, result.stdout
    image = QImage(str(shot))
    assert image.width() == round(int(width) * 1.5)


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
    assert "ValueError" in QApplication.clipboard().text()


def test_report_names_version_and_platform() -> None:
    try:
        raise RuntimeError("x")
    except RuntimeError as exc:
        text = crash_report(RuntimeError, exc, exc.__traceback__, Redactor())
    assert text.startswith("CelesteOS Desktop ")


def test_retry_policy_news_comes_and_goes_in_the_banner(qtbot: QtBot) -> None:
    window = MainWindow(NoFolders(), HeaderState(None, None, "Connected"))  # type: ignore[arg-type]
    qtbot.addWidget(window)
    presenter = EventPresenter(window)
    presenter.apply([Throttled("graph", 30.0, "429 Too Many Requests", 2)], 100.0)
    assert "asked us to wait 30 s" in window.banner.text("throttled:graph")
    presenter.apply([BackingOff("storage", 2, 4.0, "503 Service Unavailable")], 100.0)
    assert "Trying again in 4 s" in window.banner.text("retry:storage")
    presenter.apply([Recovered("storage", 4)], 101.0)
    assert window.banner.shown() == ["throttled:graph"]
    window.banner.expire(131.0)
    assert window.banner.shown() == []
    presenter.apply([Paused(PauseReason.OFFLINE, "Link down.")], 102.0)
    assert presenter.connection("Connected") == "Offline — waiting for the connection"
    assert presenter.status(running=True, signed_in=True) == ("offline", "Waiting for the connection: Link down.")
    presenter.apply([Resumed(PauseReason.OFFLINE)], 103.0)
    assert presenter.connection("Connected") == "Connected"
    assert presenter.status(running=False, signed_in=False)[0] == "problem"
