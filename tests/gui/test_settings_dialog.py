"""The Settings dialog: validation that names the setting and the fix, OK disabled while a
field is invalid, and a save that round-trips through the settings file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QSpinBox,
)
from pytestqt.qtbot import QtBot
from test_connect_dialog import qasync_loop, run, until

from celeste_desktop.config.settings import Settings, load_settings, save_settings
from celeste_desktop.gui.settings_dialog import SettingsDialog

DESTINATION, NETWORK = 1, 2


class FakeSecrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as event_loop:
        yield event_loop


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.json"


@pytest.fixture
def autostart() -> list[bool]:
    return []


@pytest.fixture
def dialog(qtbot: QtBot, settings_file: Path, autostart: list[bool]) -> SettingsDialog:
    widget = SettingsDialog(
        Settings(yacht_id="3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"),
        settings_file,
        set_start_at_login=autostart.append,
        secrets=FakeSecrets(),
    )
    qtbot.addWidget(widget)
    widget.show()
    return widget


def error_of(dialog: SettingsDialog, name: str) -> str:
    label = dialog._fields[name].error
    return "" if label.isHidden() else label.text()


def test_defaults_are_valid(dialog: SettingsDialog) -> None:
    assert dialog.validate()
    assert dialog.ok_button.isEnabled() and dialog.apply_button.isEnabled()
    assert not dialog.authority.isEnabled() and "login.microsoftonline.com" in dialog.authority.placeholderText()
    assert not dialog.digest_url.isEnabled()


def test_a_bad_cap_is_named_and_blocks_ok(dialog: SettingsDialog) -> None:
    dialog.upload_limit.number.setText("fast")

    assert error_of(dialog, "upload_limit") == "⚠ upload limit must be a number like 2 or 0.5 (0 for no cap)"
    assert dialog.upload_limit.number.property("invalid") is True
    assert "upload limit" in dialog.upload_limit.number.accessibleDescription()
    assert not dialog.ok_button.isEnabled() and not dialog.apply_button.isEnabled()
    assert "upload limit" in dialog.summary.text()
    assert not dialog.tabs.tabIcon(0).isNull() and dialog.tabs.tabIcon(DESTINATION).isNull()
    assert dialog.apply() is False

    dialog.upload_limit.number.setText("2")

    assert error_of(dialog, "upload_limit") == "" and dialog.ok_button.isEnabled()
    assert dialog.tabs.tabIcon(0).isNull()


def test_a_bad_schedule_window_is_named(dialog: SettingsDialog) -> None:
    dialog._add_window("25:00-06:00")
    dialog.validate()
    assert "'25:00-06:00' is not a window like 22:00-06:00" in error_of(dialog, "schedule")
    assert not dialog.ok_button.isEnabled()
    dialog.schedule.setCurrentRow(0)
    dialog._remove_window()
    assert error_of(dialog, "schedule") == "" and dialog.ok_button.isEnabled()


def test_bad_values_name_the_setting(dialog: SettingsDialog) -> None:
    edits = {name: field.widget for name, field in dialog._fields.items()}
    edits["yacht_id"].setText("not-a-uuid")  # type: ignore[attr-defined]
    edits["proxy"].setText("proxy:3128")  # type: ignore[attr-defined]
    dialog.ca_bundle.setText("/no/such/ca.pem")

    assert error_of(dialog, "yacht_id").startswith("⚠ yacht id must be a UUID like 3f2b")
    assert "http://proxy.example:3128" in error_of(dialog, "proxy")
    assert "/no/such/ca.pem does not exist" in error_of(dialog, "ca_bundle")
    assert not dialog.tabs.tabIcon(NETWORK).isNull()


def test_custom_cloud_needs_both_addresses(dialog: SettingsDialog) -> None:
    dialog.cloud.setCurrentIndex(dialog.cloud.findData("custom"))
    assert dialog.authority.isEnabled() and dialog.graph_url.isEnabled()
    assert "custom cloud" in error_of(dialog, "authority") and not dialog.ok_button.isEnabled()
    dialog.authority.setText("https://login.example.test")
    dialog.graph_url.setText("https://graph.example.test/v1.0")
    assert dialog.ok_button.isEnabled()


def test_digest_mode_needs_its_address(dialog: SettingsDialog) -> None:
    dialog.pipeline_mode.setCurrentIndex(dialog.pipeline_mode.findData("digest"))
    assert dialog.digest_url.isEnabled() and "digest url" in error_of(dialog, "digest_url")
    dialog.digest_url.setText("https://digest.example.test")
    assert dialog.ok_button.isEnabled()


def test_save_round_trip(dialog: SettingsDialog, settings_file: Path, autostart: list[bool], tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    dialog.upload_limit.number.setText("2")
    dialog.upload_limit.unit.setCurrentIndex(dialog.upload_limit.unit.findData("mbit"))
    dialog.download_limit.number.setText("200")
    dialog.download_limit.unit.setCurrentIndex(dialog.download_limit.unit.findData("kb"))
    dialog._add_window("22:00-06:00")
    dialog._fields["concurrency_small"].widget.setValue(6)  # type: ignore[attr-defined]
    dialog.pipeline_mode.setCurrentIndex(dialog.pipeline_mode.findData("digest"))
    dialog.digest_url.setText("https://digest.example.test")
    dialog.delete_objects.setChecked(True)
    dialog._fields["proxy"].widget.setText("http://proxy.example:3128")  # type: ignore[attr-defined]
    dialog.ca_bundle.setText(str(bundle))
    dialog.cloud.setCurrentIndex(dialog.cloud.findData("usgov"))
    dialog._fields["start_at_login"].widget.setChecked(True)  # type: ignore[attr-defined]
    dialog._fields["budget_monthly_mb"].widget.setValue(5000)  # type: ignore[attr-defined]
    dialog._fields["budget_reset_day"].widget.setValue(15)  # type: ignore[attr-defined]
    dialog.yacht_key.setText("new-yacht-key")

    assert dialog.apply()

    saved = load_settings(settings_file)
    assert saved == dialog.saved
    assert (saved.upload_limit, saved.download_limit, saved.upload_limit_bytes) == ("2mbit", "200kb", 250_000)
    assert saved.schedule == ("22:00-06:00",) and saved.concurrency_small == 6
    assert (saved.pipeline_mode, saved.digest_url, saved.delete_objects_on_remove) == (
        "digest",
        "https://digest.example.test",
        True,
    )
    assert (saved.proxy, saved.ca_bundle, saved.cloud) == ("http://proxy.example:3128", str(bundle), "usgov")
    assert saved.effective_authority == "https://login.microsoftonline.us"
    assert (saved.start_at_login, saved.budget_monthly_mb, saved.budget_reset_day) == (True, 5000, 15)
    assert autostart == [True]
    assert dialog._secrets is not None and dialog._secrets.get("supabase_key") == "new-yacht-key"
    assert dialog.yacht_key.text() == "", "a typed key is not kept on screen"
    assert "new-yacht-key" not in settings_file.read_text()

    reopened = SettingsDialog(saved, settings_file)
    assert reopened.upload_limit.value() == "2mbit" and reopened.download_limit.value() == "200kb"
    assert reopened.collect() == (saved, {})


def test_a_cli_unit_is_kept(qtbot: QtBot, settings_file: Path) -> None:
    dialog = SettingsDialog(Settings(upload_limit="512KiB/s"), settings_file)
    qtbot.addWidget(dialog)
    assert dialog.upload_limit.value() == "512kib" and dialog.collect()[0].upload_limit_bytes == 512 * 1024


def test_start_at_login_failure_is_shown_and_nothing_saved(qtbot: QtBot, settings_file: Path) -> None:
    def refuse(_enabled: bool) -> None:
        raise OSError(13, "Permission denied")

    dialog = SettingsDialog(Settings(), settings_file, set_start_at_login=refuse)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog._fields["start_at_login"].widget.setChecked(True)  # type: ignore[attr-defined]

    assert dialog.apply() is False
    assert "start at login could not be changed" in error_of(dialog, "start_at_login")
    assert not settings_file.exists()


def test_run_returns_the_saved_settings_after_ok(
    qtbot: QtBot, qapp: QApplication, settings_file: Path, loop: qasync.QEventLoop
) -> None:
    save_settings(settings_file, Settings(sync_interval_minutes=30))
    dialog = SettingsDialog(load_settings(settings_file), settings_file)
    qtbot.addWidget(dialog)

    async def scenario() -> Settings | None:
        running = asyncio.ensure_future(dialog.run())
        await until(dialog.isVisible)
        dialog._fields["sync_interval_minutes"].widget.setValue(15)  # type: ignore[attr-defined]
        dialog.ok_button.click()
        return await running

    saved = run(loop, scenario())

    assert saved is not None and saved.sync_interval_minutes == 15
    assert load_settings(settings_file).sync_interval_minutes == 15


def test_cancel_saves_nothing(qtbot: QtBot, settings_file: Path, loop: qasync.QEventLoop) -> None:
    dialog = SettingsDialog(Settings(), settings_file)
    qtbot.addWidget(dialog)

    async def scenario() -> Settings | None:
        running = asyncio.ensure_future(dialog.run())
        await until(dialog.isVisible)
        dialog.upload_limit.number.setText("5")
        dialog.reject()
        return await running

    assert run(loop, scenario()) is None
    assert not settings_file.exists()


def test_every_field_has_a_name_and_mnemonics_do_not_clash(dialog: SettingsDialog) -> None:
    fields = dialog.findChildren(QLineEdit) + dialog.findChildren(QComboBox) + dialog.findChildren(QSpinBox)
    unnamed = [f for f in fields if not f.accessibleName() and not isinstance(f.parent(), QAbstractSpinBox)]
    assert unnamed == []
    for tab in range(dialog.tabs.count()):
        page = dialog.tabs.widget(tab)
        assert page is not None
        texts = [label.text() for label in page.findChildren(QLabel) if label.buddy() is not None]
        texts += [button.text() for button in page.findChildren(QAbstractButton)]
        texts += [dialog.tabs.tabText(other) for other in range(dialog.tabs.count())]
        keys = [text[text.index("&") + 1].lower() for text in texts if "&" in text]
        assert len(keys) == len(set(keys)), (tab, sorted(keys))


def test_leaving_a_custom_cloud_drops_its_addresses(qtbot: QtBot, settings_file: Path) -> None:
    custom = Settings(cloud="custom", authority="https://login.example.test", graph_url="https://graph.example.test")
    dialog = SettingsDialog(custom, settings_file)
    qtbot.addWidget(dialog)
    dialog.cloud.setCurrentIndex(dialog.cloud.findData("global"))
    settings, errors = dialog.collect()
    assert errors == {} and (settings.authority, settings.graph_url) == ("", "")
    assert settings.effective_authority == "https://login.microsoftonline.com"
