"""The first-run wizard against the simulators: a provisioning file, Test connection, the
device-code sign-in, ticking folders, and the visible key-file fallback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QLineEdit, QWidget, QWizard
from pytestqt.qtbot import QtBot
from test_connect_dialog import OFFICER, qasync_loop, run, until

from celeste_desktop.auth import keystore
from celeste_desktop.auth.keystore import account_for_folder, choose_keystore
from celeste_desktop.auth.vault import Vault
from celeste_desktop.compose import open_services
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings, load_settings, save_settings
from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.gui.wiring import ServicesBackend
from celeste_desktop.gui.wizard import (
    DESTINATION,
    FINISH,
    FOLDERS,
    KEY_STORAGE,
    MICROSOFT,
    WELCOME,
    BackendFactory,
    DestinationPage,
    FinishPage,
    FirstRunWizard,
    FoldersPage,
    KeyStoragePage,
    MicrosoftPage,
    VaultFactory,
    WizardBackend,
)
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.store.db import open_state

OTHER_YACHT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def sim_backend(paths: AppPaths) -> BackendFactory:
    async def open_backend(settings: Settings, vault: Vault) -> WizardBackend:
        return ServicesBackend(open_services(paths, settings, vault))

    return open_backend


def keystore_vaults(paths: AppPaths) -> VaultFactory:
    """The vault the ``vault_backend`` setting asks for, as the controller's ``vault_for`` does."""

    def make(settings: Settings) -> Vault:
        account = account_for_folder(paths.data_dir)
        return Vault(
            paths.vault_file, choose_keystore(settings.vault_backend, key_file=paths.key_file, account=account)
        )

    return make


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    with qasync_loop(qapp) as event_loop:
        yield event_loop


@pytest.fixture
def paths(home: Path) -> AppPaths:
    paths = AppPaths.resolve(home)
    paths.ensure()
    return paths


@pytest.fixture
def file_vault(paths: AppPaths) -> None:
    """This PC has no credential store and the officer already chose the key file."""
    save_settings(paths.settings_file, Settings(vault_backend="file"))


@pytest.fixture
def provisioning(tmp_path: Path, sim: SimStack) -> Path:
    path = tmp_path / "yacht.json"
    path.write_text(json.dumps(sim.settings_json()))
    return path


def make_wizard(qtbot: QtBot, paths: AppPaths, **options: object) -> FirstRunWizard:
    wizard = FirstRunWizard(paths, sim_backend(paths), keystore_vaults(paths), **options)  # type: ignore[arg-type]
    qtbot.addWidget(wizard)
    return wizard


def next_enabled(wizard: FirstRunWizard) -> bool:
    return wizard.button(QWizard.WizardButton.NextButton).isEnabled()


def destination(wizard: FirstRunWizard) -> DestinationPage:
    page = wizard.page(DESTINATION)
    assert isinstance(page, DestinationPage)
    return page


@pytest.mark.usefixtures("file_vault")
def test_happy_path_with_the_simulators(
    qtbot: QtBot, loop: qasync.QEventLoop, paths: AppPaths, sim: SimStack, provisioning: Path
) -> None:
    wizard = make_wizard(qtbot, paths)

    async def scenario() -> bool:
        running = asyncio.ensure_future(wizard.run())
        await until(wizard.isVisible)
        assert wizard.currentId() == WELCOME
        wizard.next()
        assert wizard.currentId() == DESTINATION, "a usable key store skips the warning page"
        page = destination(wizard)
        assert not next_enabled(wizard)
        assert page.import_file(str(provisioning))
        assert page.edits["yacht_id"].text() == sim.yacht_id and page.edits["supabase_key"].text() == sim.yacht_key
        assert page.edits["supabase_key"].echoMode() == page.edits["supabase_key"].EchoMode.Password
        await page.start_test()
        assert page.results.text().startswith("Connection works."), page.results.text()
        assert "✔ bucket “documents” is reachable" in page.results.text()
        assert next_enabled(wizard)
        wizard.next()

        assert wizard.currentId() == MICROSOFT
        microsoft = wizard.currentPage()
        assert isinstance(microsoft, MicrosoftPage)
        await until(microsoft.connect_button.isEnabled)  # the services open in the background
        assert "Not connected yet" in microsoft.status.text()
        microsoft.connect_button.click()
        await until(lambda: microsoft.connect_dialog is not None and microsoft.connect_dialog.isVisible())
        dialog = microsoft.connect_dialog
        assert dialog is not None
        dialog.device_button.click()
        await until(lambda: dialog.account is not None)  # the simulator approves on the second poll
        dialog.close_button.click()
        await until(lambda: wizard.account is not None and next_enabled(wizard))
        assert OFFICER in microsoft.status.text()
        wizard.next()

        assert wizard.currentId() == FOLDERS
        folders = wizard.currentPage()
        assert isinstance(folders, FoldersPage) and folders.picker is not None
        await folders.picker.settled()
        model = folders.picker.model
        first = next(model.index(row, 0) for row in range(model.rowCount()) if model.is_checkable(model.index(row, 0)))
        model.set_checked(first, True)
        wizard.next()

        assert wizard.currentId() == FINISH
        finish = wizard.currentPage()
        await until(lambda: wizard.button(QWizard.WizardButton.FinishButton).isEnabled())  # ticks saved
        assert isinstance(finish, FinishPage) and "Folders: 1 ticked" in finish.summary.text()
        assert OFFICER in finish.summary.text()
        wizard.button(QWizard.WizardButton.FinishButton).click()
        return await running

    assert run(loop, scenario(), timeout=30) is True

    settings = load_settings(paths.settings_file)
    assert (settings.yacht_id, settings.supabase_url) == (sim.yacht_id, sim.settings_json()["supabase_url"])
    assert "supabase_key" not in paths.settings_file.read_text()
    assert wizard.vault is not None and wizard.vault.get("supabase_key") == sim.yacht_key
    assert len(wizard.folders) == 1
    state = open_state(paths.state_db, now=lambda: datetime.now(UTC))
    try:
        assert [entry.item_id for entry in state.selection() if entry.included] == [wizard.folders[0].item_id]
    finally:
        state.close()


@pytest.mark.usefixtures("file_vault")
def test_a_wrong_yacht_key_is_named(
    qtbot: QtBot, loop: qasync.QEventLoop, paths: AppPaths, sim: SimStack, provisioning: Path
) -> None:
    wizard = make_wizard(qtbot, paths)
    wizard.show()
    wizard.next()
    page = destination(wizard)
    page.import_file(str(provisioning))
    page.edits["supabase_key"].setText(sim.supabase.mint_yacht_key(OTHER_YACHT))

    run(loop, page.start_test())

    text = page.results.text()
    assert text.startswith("The connection test found problems:")
    assert "✘ " in text and "belongs to another yacht" in text
    error = page.errors["supabase_key"]
    assert not error.isHidden() and "another yacht" in error.text()
    assert page.edits["supabase_key"].property("invalid") is True


@pytest.mark.usefixtures("file_vault")
def test_an_unreachable_project_is_named(
    qtbot: QtBot, loop: qasync.QEventLoop, paths: AppPaths, sim: SimStack, provisioning: Path
) -> None:
    wizard = make_wizard(qtbot, paths)
    wizard.show()
    wizard.next()
    page = destination(wizard)
    page.import_file(str(provisioning))
    page.edits["supabase_url"].setText("https://127.0.0.1:9")  # nothing listens there

    run(loop, page.start_test())

    assert "could not be reached" in page.results.text()
    assert "could not be reached" in page.errors["supabase_url"].text()


@pytest.mark.usefixtures("file_vault")
def test_a_bad_yacht_id_says_how_to_fix_it(qtbot: QtBot, paths: AppPaths) -> None:
    wizard = make_wizard(qtbot, paths)
    wizard.show()
    wizard.next()
    page = destination(wizard)

    qtbot.keyClicks(page.edits["yacht_id"], "not-a-uuid")

    error = page.errors["yacht_id"]
    assert not error.isHidden()
    assert error.text().startswith("⚠ yacht id must be a UUID like 3f2b6c1e-")
    assert page.edits["yacht_id"].accessibleDescription() == error.text().removeprefix("⚠ ")
    assert not next_enabled(wizard)
    assert page.errors["supabase_url"].isHidden(), "untouched empty fields are not shouted at"


def test_no_credential_store_needs_a_visible_choice(
    qtbot: QtBot, paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keystore, "detect_keyring_available", lambda: False)
    wizard = make_wizard(qtbot, paths)
    wizard.show()

    assert wizard.vault is None, "no silent fallback to a key file"
    wizard.next()
    assert wizard.currentId() == KEY_STORAGE
    page = wizard.currentPage()
    assert isinstance(page, KeyStoragePage)
    assert "No OS credential store" in page.warning.text() and str(paths.key_file) in page.warning.text()
    assert page.warning.isVisible() and not next_enabled(wizard)

    page.accept_box.setChecked(True)
    assert next_enabled(wizard)
    wizard.next()

    assert wizard.currentId() == DESTINATION
    assert load_settings(paths.settings_file).vault_backend == "file"
    assert wizard.vault is not None
    wizard.vault.set("supabase_key", "k")
    assert paths.key_file.exists()


def test_a_missing_setting_on_the_sign_in_page_is_named(qtbot: QtBot, loop: qasync.QEventLoop, paths: AppPaths) -> None:
    async def refuse(settings: Settings, vault: Vault) -> WizardBackend:
        raise ConfigError("client_id", "not set; give the Application (client) id of the app registration")

    wizard = FirstRunWizard(paths, refuse, lambda _s: Vault(paths.vault_file, FakeKeyStore()))
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.setStartId(MICROSOFT)
    wizard.restart()
    page = wizard.currentPage()
    assert isinstance(page, MicrosoftPage)

    run(loop, until(lambda: page.isComplete()))

    assert "client id: not set" in page.status.text() and not page.connect_button.isEnabled()
    assert page.nextId() == FINISH


def test_cancel_returns_false(qtbot: QtBot, loop: qasync.QEventLoop, paths: AppPaths) -> None:
    wizard = FirstRunWizard(paths, sim_backend(paths), lambda _s: Vault(paths.vault_file, FakeKeyStore()))
    qtbot.addWidget(wizard)

    async def scenario() -> bool:
        running = asyncio.ensure_future(wizard.run())
        await until(wizard.isVisible)
        qtbot.keyClick(wizard, Qt.Key.Key_Escape)
        return await running

    assert run(loop, scenario()) is False


class FakeKeyStore:
    def __init__(self) -> None:
        self.key: bytes | None = None

    def load(self) -> bytes | None:
        return self.key

    def store(self, key: bytes) -> None:
        self.key = key

    def delete(self) -> None:
        self.key = None

    def describe(self) -> str:
        return "memory"


@pytest.mark.usefixtures("file_vault")
def test_destination_page_names_fields_and_mnemonics_do_not_clash(qtbot: QtBot, paths: AppPaths) -> None:
    wizard = make_wizard(qtbot, paths)
    wizard.show()
    wizard.next()
    page = destination(wizard)
    assert all(edit.accessibleName() for edit in page.findChildren(QLineEdit))
    texts = [label.text() for label in page.findChildren(QLabel) if label.buddy() is not None]
    texts += [button.text() for button in page.findChildren(QAbstractButton)]
    texts += [
        wizard.buttonText(button) for button in (QWizard.WizardButton.BackButton, QWizard.WizardButton.NextButton)
    ]
    keys = [text[text.index("&") + 1].lower() for text in texts if "&" in text]
    assert len(keys) == len(set(keys)), sorted(keys)
    chain: list[QWidget] = []
    widget = page.edits["bucket"].nextInFocusChain()
    while widget is not None and widget is not page.edits["tenant"] and len(chain) < 50:
        chain.append(widget)
        widget = widget.nextInFocusChain()
    assert page.test_button in chain, "Tab goes from the bucket to Test connection, then to the tenant"
