"""One instance per user and data folder: the second launch hands over and exits 0."""

from __future__ import annotations

import getpass
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QDir
from PySide6.QtNetwork import QLocalServer
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from celeste_desktop.gui.single_instance import SingleInstance, bring_to_front, server_name

APP_ID = "celeste-desktop-test"

SECOND_LAUNCH = """
import sys
from PySide6.QtCore import QCoreApplication
from celeste_desktop.gui.single_instance import SingleInstance

app = QCoreApplication([])
instance = SingleInstance(sys.argv[1], sys.argv[2])
sys.exit(3 if instance.try_primary(sys.argv[3]) else 0)
"""


def test_name_is_per_home_and_per_user_and_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = server_name(APP_ID, tmp_path / "one")
    assert first == server_name(APP_ID, tmp_path / "one" / ".." / "one"), "the same folder spelt differently"
    assert first != server_name(APP_ID, tmp_path / "two")
    assert first != server_name(APP_ID, None)
    assert first != server_name("another app", tmp_path / "one")
    assert len(first) < 60 and "/" not in first
    monkeypatch.setattr(getpass, "getuser", lambda: "someone-else")
    assert first != server_name(APP_ID, tmp_path / "one")


def test_second_instance_in_process_pings_the_first(qtbot: QtBot, tmp_path: Path) -> None:
    first = SingleInstance(APP_ID, tmp_path)
    second = SingleInstance(APP_ID, tmp_path)
    try:
        assert first.try_primary()
        assert first.try_primary(), "asking again keeps the role"
        with qtbot.waitSignal(first.activated, timeout=5000) as blocker:
            assert not second.try_primary("show --from second")
        assert blocker.args == ["show --from second"]
        assert not second.is_primary
    finally:
        first.close()


def test_another_home_runs_side_by_side(qtbot: QtBot, tmp_path: Path) -> None:
    one = SingleInstance(APP_ID, tmp_path / "one")
    two = SingleInstance(APP_ID, tmp_path / "two")
    try:
        assert one.try_primary()
        assert two.try_primary()
    finally:
        one.close()
        two.close()


def test_second_launch_as_a_real_process_exits_zero(qtbot: QtBot, tmp_path: Path) -> None:
    first = SingleInstance(APP_ID, tmp_path)
    assert first.try_primary()
    try:
        with qtbot.waitSignal(first.activated, timeout=20_000) as blocker:
            child = subprocess.Popen(
                [sys.executable, "-c", SECOND_LAUNCH, APP_ID, str(tmp_path), "show"],
                cwd=Path(__file__).resolve().parents[2],
            )
        assert child.wait(timeout=20) == 0
        assert blocker.args == ["show"]
    finally:
        first.close()


def test_a_closed_primary_lets_the_next_launch_take_over(qtbot: QtBot, tmp_path: Path) -> None:
    first = SingleInstance(APP_ID, tmp_path)
    assert first.try_primary()
    first.close()
    after = SingleInstance(APP_ID, tmp_path)
    try:
        assert after.try_primary()
    finally:
        after.close()


@pytest.mark.skipif(sys.platform == "win32", reason="named pipes vanish with their process; no stale file")
def test_a_stale_socket_from_a_crashed_instance_is_replaced(qtbot: QtBot, tmp_path: Path) -> None:
    instance = SingleInstance(APP_ID, tmp_path)
    path = Path(QDir.tempPath()) / instance.name
    # A crashed instance leaves its socket file behind with nobody listening on it.
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(str(path))
    crashed.close()
    assert path.exists()
    plain = QLocalServer()
    assert not plain.listen(instance.name), "a plain listen refuses the leftover socket"

    try:
        assert instance.try_primary()
        second = SingleInstance(APP_ID, tmp_path)
        with qtbot.waitSignal(instance.activated, timeout=5000):
            assert not second.try_primary()
    finally:
        instance.close()
        path.unlink(missing_ok=True)


def test_bring_to_front_restores_a_minimised_window(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    window.showMinimized()
    assert window.isMinimized()
    bring_to_front(window)
    assert window.isVisible() and not window.isMinimized()
    hidden = QWidget()  # closed to the tray
    qtbot.addWidget(hidden)
    bring_to_front(hidden)
    assert hidden.isVisible()
