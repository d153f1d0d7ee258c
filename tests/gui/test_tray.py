"""The tray icon, its menu and signals, and the state icons behind it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from celeste_desktop.gui.icons import STATE_COLOURS, TrayState, app_icon, state_icon
from celeste_desktop.gui.tray import PAUSE_LABEL, RESUME_LABEL, TOOLTIP_LIMIT, TrayController


def menu_labels(tray: TrayController) -> list[str]:
    return [action.text() for action in tray.menu.actions() if not action.isSeparator()]


def test_no_system_tray_means_no_icon_and_no_crash(qtbot: QtBot) -> None:
    tray = TrayController()  # offscreen: the platform reports no tray
    assert tray.available is QSystemTrayIcon.isSystemTrayAvailable()
    unavailable = TrayController(available=False)
    assert unavailable.icon is None
    unavailable.show()
    unavailable.set_state(TrayState.PROBLEM, "Sign in again")
    unavailable.hide()
    assert unavailable.show_message("Sync finished", "12 files copied") is False
    assert unavailable.tooltip == "CelesteOS Desktop — Sign in again"
    del tray


def test_menu_has_the_promised_entries_in_order(qtbot: QtBot) -> None:
    tray = TrayController(available=False)
    tray.set_state(TrayState.IDLE, "Up to date")
    assert menu_labels(tray) == [
        "Up to date",
        "Open CelesteOS Desktop",
        "Sync now",
        PAUSE_LABEL,
        "Open Problems…",
        "Quit",
    ]
    assert not tray.status_action.isEnabled(), "the status line is information, not a command"
    assert tray.menu.defaultAction() is tray.open_action


@pytest.mark.parametrize(
    ("action_name", "signal_name"),
    [
        ("open_action", "show_requested"),
        ("sync_action", "sync_requested"),
        ("problems_action", "problems_requested"),
        ("quit_action", "quit_requested"),
    ],
)
def test_each_menu_action_emits_its_signal(qtbot: QtBot, action_name: str, signal_name: str) -> None:
    tray = TrayController(available=False)
    with qtbot.waitSignal(getattr(tray, signal_name), timeout=1000):
        getattr(tray, action_name).trigger()


def test_pause_entry_follows_the_state(qtbot: QtBot) -> None:
    tray = TrayController(available=False)
    requests: list[str] = []
    tray.pause_requested.connect(lambda: requests.append("pause"))
    tray.resume_requested.connect(lambda: requests.append("resume"))

    tray.set_state(TrayState.SYNCING, "Copying 3 of 40 files")
    assert tray.pause_action.text() == PAUSE_LABEL
    assert not tray.sync_action.isEnabled(), "a running sync cannot be started again"
    tray.pause_action.trigger()
    tray.set_state(TrayState.PAUSED, "Paused by you")
    assert tray.pause_action.text() == RESUME_LABEL
    assert tray.sync_action.isEnabled()
    tray.pause_action.trigger()
    assert requests == ["pause", "resume"]


def test_tooltip_is_one_short_line(qtbot: QtBot) -> None:
    tray = TrayController(available=False)
    tray.set_state(TrayState.OFFLINE, "Offline\n  — waiting   for the satellite link " + "x" * 300)
    assert "\n" not in tray.tooltip
    assert len(tray.tooltip) <= TOOLTIP_LIMIT
    assert tray.tooltip.startswith("CelesteOS Desktop — Offline — waiting for the satellite link")
    assert tray.tooltip.endswith("…")


def test_a_real_tray_icon_shows_state_tooltip_and_menu(qtbot: QtBot) -> None:
    tray = TrayController(available=True)
    assert tray.icon is not None
    tray.set_state(TrayState.PROBLEM, "2 files need attention")
    assert tray.icon.toolTip() == "CelesteOS Desktop — 2 files need attention"
    assert tray.icon.contextMenu() is tray.menu
    assert tray.icon.icon().cacheKey() == tray.current_icon().cacheKey()
    tray.set_state(TrayState.IDLE, "Up to date")
    assert tray.icon.icon().cacheKey() == tray.current_icon().cacheKey()


def test_double_click_opens_the_window_and_balloon_click_is_forwarded(qtbot: QtBot) -> None:
    tray = TrayController(available=True)
    assert tray.icon is not None
    with qtbot.waitSignal(tray.show_requested, timeout=1000):
        tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.DoubleClick)
    with qtbot.waitSignal(tray.message_clicked, timeout=1000):
        tray.icon.messageClicked.emit()


# -- icons -------------------------------------------------------------------------------------


def render(state: TrayState, size: int = 32) -> QImage:
    return state_icon(state, search=[]).pixmap(size, size).toImage().convertToFormat(QImage.Format.Format_ARGB32)


def shape(image: QImage) -> set[tuple[int, int, bool]]:
    """What a colour-blind eye or a monochrome panel sees: outline, and the light glyph inside it."""
    return {
        (x, y, image.pixelColor(x, y).lightness() > 220)
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).alpha() > 128
    }


def test_every_state_has_its_own_shape_not_only_its_own_colour(qapp: object) -> None:
    shapes = {state: shape(render(state)) for state in TrayState}
    for first, second in itertools.combinations(TrayState, 2):
        differing = len(shapes[first] ^ shapes[second])
        assert differing > 100, f"{first} and {second} have nearly the same outline"


def test_every_state_has_its_own_colour(qapp: object) -> None:
    hues = {QColor(colour).hsvHue() for colour in STATE_COLOURS.values() if QColor(colour).hsvSaturation() > 60}
    assert len(hues) == len(STATE_COLOURS) - 1, "offline is grey; every other state has its own hue"
    # The drawn icon actually uses its colour.
    for state in TrayState:
        image = render(state, 64)
        wanted = QColor(STATE_COLOURS[state])
        found = any(image.pixelColor(x, y).rgb() == wanted.rgb() for x in range(0, 64, 2) for y in range(0, 64, 2))
        assert found, f"{state} icon does not use {wanted.name()}"


def test_icons_are_drawn_at_tray_sizes(qapp: object) -> None:
    for state in TrayState:
        icon = state_icon(state, search=[])
        assert not icon.isNull()
        assert {16, 22, 32, 64}.issubset({size.width() for size in icon.availableSizes()})
    assert not app_icon(search=[]).isNull()


def test_packaged_icon_files_win_over_the_drawings(qapp: object, tmp_path: Path) -> None:
    magenta = QImage(32, 32, QImage.Format.Format_ARGB32)
    magenta.fill(QColor("#ff00ff"))
    assert magenta.save(str(tmp_path / "tray-paused-32.png"))
    assert magenta.save(str(tmp_path / "celeste-32.png"))
    empty = tmp_path / "empty"
    empty.mkdir()

    loaded = state_icon(TrayState.PAUSED, search=[empty, tmp_path]).pixmap(32, 32).toImage()
    assert loaded.pixelColor(16, 16).name() == "#ff00ff"
    assert app_icon(search=[tmp_path]).pixmap(32, 32).toImage().pixelColor(16, 16).name() == "#ff00ff"
    drawn = state_icon(TrayState.IDLE, search=[tmp_path]).pixmap(32, 32).toImage()
    assert drawn.pixelColor(16, 16).name() != "#ff00ff", "a state without a file is still drawn"
