"""The folder picker on screen (offscreen): clicks and Space on the ticks, the drive chooser,
expanding and collapsing, the Retry button and the urgent mark."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import qasync
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtWidgets import QApplication, QMenu, QPushButton, QStyle, QStyleOptionViewItem
from pytestqt.qtbot import QtBot

# The fake source and loop helpers are shared with the model's tests (same folder).
from test_folder_model import D1, D2, FakeSource, at, names, qasync_loop, run, sample_source

from celeste_desktop.domain.errors import ServiceUnavailable
from celeste_desktop.domain.models import Drive, DriveKind, SelectionEntry
from celeste_desktop.gui.folder_model import Column
from celeste_desktop.gui.folder_view import URGENT_ACTION, FolderPicker, FolderTreeView, drive_label

DRIVES = [
    Drive("drive-3", "Manuals", DriveKind.SHAREPOINT, owner="Bridge Team"),
    Drive(D2, "Documents", DriveKind.SHAREPOINT, owner="Fleet Technical", web_url="https://example.test/sites/ft"),
    Drive(D1, "OneDrive", DriveKind.ONEDRIVE, owner="Morgan Reyes"),
]


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as event_loop:
        yield event_loop


@pytest.fixture
def source() -> FakeSource:
    return sample_source()


@pytest.fixture
def picker(qtbot: QtBot, source: FakeSource, loop: qasync.QEventLoop) -> Iterator[FolderPicker]:
    source.drives = list(DRIVES)
    widget = FolderPicker(source)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    yield widget
    widget.shutdown()


def ready(picker: FolderPicker, loop: qasync.QEventLoop) -> FolderTreeView:
    picker.load_drives()
    run(loop, picker.settled())
    return picker.view


def check_box_centre(view: FolderTreeView, index: QModelIndex) -> QPoint:
    option = QStyleOptionViewItem()
    view.initViewItemOption(option)
    option.rect = view.visualRect(index)
    option.features |= QStyleOptionViewItem.ViewItemFeature.HasCheckIndicator
    return view.style().subElementRect(QStyle.SubElement.SE_ItemViewItemCheckIndicator, option, view).center()


def test_drives_are_grouped_and_labelled(picker: FolderPicker, loop: qasync.QEventLoop) -> None:
    ready(picker, loop)
    combo = picker.drive_combo
    assert [combo.itemText(row) for row in range(combo.count())] == [
        "OneDrive — Morgan Reyes",
        "",  # separator between OneDrive and SharePoint
        "SharePoint — Bridge Team / Manuals",
        "SharePoint — Fleet Technical / Documents",
    ]
    assert combo.currentText() == "OneDrive — Morgan Reyes"
    assert picker.model.drive_id == D1
    assert names(picker.model) == ["$RECYCLE.BIN", "Bridge", "Crew Notes", "Engineering"]
    assert combo.itemData(3, Qt.ItemDataRole.ToolTipRole) == "https://example.test/sites/ft"
    assert drive_label(Drive("p", "OneDrive", DriveKind.PERSONAL, owner="Sam")) == "OneDrive (personal) — Sam"


def test_accessible_names(picker: FolderPicker) -> None:
    assert picker.view.accessibleName() == "OneDrive folders"
    assert picker.drive_combo.accessibleName() == "Drive or library"
    assert picker.reload_button.accessibleName() == "Reload drives and folders"


def test_clicking_a_box_ticks_the_folder(picker: FolderPicker, qtbot: QtBot, loop: qasync.QEventLoop) -> None:
    view = ready(picker, loop)
    engineering = at(picker.model, "Engineering")
    with qtbot.waitSignal(picker.selection_changed, timeout=1000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=check_box_centre(view, engineering))
    assert picker.model.check_state(engineering) is Qt.CheckState.Checked
    assert picker.selection() == [SelectionEntry(D1, "Engineering", True, path="Engineering")]


def test_space_toggles_the_current_row(picker: FolderPicker, qtbot: QtBot, loop: qasync.QEventLoop) -> None:
    view = ready(picker, loop)
    bridge = at(picker.model, "Bridge")
    view.setCurrentIndex(bridge.siblingAtColumn(Column.SIZE))
    changes: list[None] = []
    picker.selection_changed.connect(lambda: changes.append(None))
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert picker.model.check_state(bridge) is Qt.CheckState.Checked
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert picker.model.check_state(bridge) is Qt.CheckState.Unchecked
    assert len(changes) == 2
    view.setCurrentIndex(at(picker.model, "Crew Notes"))
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert len(changes) == 2, "a OneNote notebook cannot be ticked"


def test_expanding_lists_lazily_and_collapsing_cancels(
    picker: FolderPicker, source: FakeSource, loop: qasync.QEventLoop
) -> None:
    view = ready(picker, loop)
    gate = source.hold("Engineering")
    view.expand(at(picker.model, "Engineering"))
    run(loop, source.entered("Engineering"))
    assert names(picker.model, at(picker.model, "Engineering")) == ["Loading…"]
    view.collapse(at(picker.model, "Engineering"))
    run(loop, picker.model.settled())
    assert source.cancelled == ["Engineering"]
    gate.set()
    view.expand(at(picker.model, "Engineering"))
    run(loop, picker.model.settled())
    assert names(picker.model, at(picker.model, "Engineering")) == ["Manuals", "Schematics"]


def test_switching_drive_reloads_the_tree_and_cancels_listings(
    picker: FolderPicker, source: FakeSource, qtbot: QtBot, loop: qasync.QEventLoop
) -> None:
    view = ready(picker, loop)
    source.hold("Engineering")
    view.expand(at(picker.model, "Engineering"))
    run(loop, source.entered("Engineering"))
    with qtbot.waitSignal(picker.drive_changed, timeout=1000) as switched:
        picker.drive_combo.setCurrentIndex(picker.drive_combo.findData(D2))
    assert switched.args == [D2]
    run(loop, picker.model.settled())
    assert source.cancelled == ["Engineering"]
    assert names(picker.model) == ["Deck", "Galley"]


def test_a_failed_listing_offers_a_retry_button(
    picker: FolderPicker, source: FakeSource, qtbot: QtBot, loop: qasync.QEventLoop
) -> None:
    view = ready(picker, loop)
    source.failures["Engineering"] = ServiceUnavailable("No connection.")
    view.expand(at(picker.model, "Engineering"))
    run(loop, picker.model.settled())
    error_row = picker.model.index(0, Column.ITEMS, at(picker.model, "Engineering"))
    button = view.indexWidget(error_row)
    assert isinstance(button, QPushButton) and button.text() == "Retry"
    assert button.accessibleName() == "Retry listing Engineering"
    del source.failures["Engineering"]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    run(loop, picker.model.settled())
    assert names(picker.model, at(picker.model, "Engineering")) == ["Manuals", "Schematics"]


def test_enter_on_the_error_row_retries(
    picker: FolderPicker, source: FakeSource, qtbot: QtBot, loop: qasync.QEventLoop
) -> None:
    view = ready(picker, loop)
    source.failures["Engineering"] = ServiceUnavailable("No connection.")
    view.expand(at(picker.model, "Engineering"))
    run(loop, picker.model.settled())
    del source.failures["Engineering"]
    view.setCurrentIndex(picker.model.index(0, 0, at(picker.model, "Engineering")))
    qtbot.keyClick(view, Qt.Key.Key_Space)
    run(loop, picker.model.settled())
    assert names(picker.model, at(picker.model, "Engineering")) == ["Manuals", "Schematics"]


def test_context_menu_marks_a_ticked_folder_urgent(picker: FolderPicker, loop: qasync.QEventLoop) -> None:
    view = ready(picker, loop)
    engineering = at(picker.model, "Engineering")
    menu = view.context_menu(engineering)
    assert menu is not None
    actions = {action.text(): action for action in menu.actions()}
    assert not actions[URGENT_ACTION].isEnabled(), "tick it first"
    actions["Tick"].trigger()
    menu = view.context_menu(engineering)
    assert menu is not None
    urgent = next(action for action in menu.actions() if action.text() == URGENT_ACTION)
    assert urgent.isEnabled() and not urgent.isChecked()
    urgent.trigger()
    assert at(picker.model, "Engineering", Column.URGENT).data() == "⚑ urgent"
    assert picker.selection() == [SelectionEntry(D1, "Engineering", True, urgent=True, path="Engineering")]
    assert view.context_menu(at(picker.model, "Crew Notes")) is None


def test_a_drive_listing_failure_is_shown_and_reload_recovers(
    picker: FolderPicker, source: FakeSource, loop: qasync.QEventLoop
) -> None:
    source.drive_failure = ServiceUnavailable("The satellite link is down.")
    run(loop, picker.load_drives())
    assert picker.status_label.isVisible()
    assert "The satellite link is down." in picker.status_label.text()
    assert picker.drive_combo.count() == 0 and picker.model.drive_id is None
    source.drive_failure = None
    picker.reload_button.click()
    run(loop, picker.settled())
    assert not picker.status_label.isVisible()
    assert picker.model.drive_id == D1


def test_the_drive_with_ticked_folders_is_shown_first(picker: FolderPicker, loop: qasync.QEventLoop) -> None:
    picker.set_selection([SelectionEntry(D2, "Deck", True, path="Deck")])
    ready(picker, loop)
    assert picker.model.drive_id == D2
    assert picker.model.check_state(at(picker.model, "Deck")) is Qt.CheckState.Checked


def test_right_click_pops_up_the_menu(picker: FolderPicker, qtbot: QtBot, loop: qasync.QEventLoop) -> None:
    view = ready(picker, loop)
    bridge = at(picker.model, "Bridge")
    view.customContextMenuRequested.emit(view.visualRect(bridge).center())
    menu = next(menu for menu in view.findChildren(QMenu) if menu.isVisible())
    next(action for action in menu.actions() if action.text() == "Tick").trigger()
    menu.hide()
    assert picker.model.check_state(bridge) is Qt.CheckState.Checked
    qtbot.waitUntil(lambda: not view.findChildren(QMenu), timeout=1000)
