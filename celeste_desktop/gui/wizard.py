"""The first-run wizard: where the vault key is kept, the fleet's Supabase destination (with Test
connection and an "Import provisioning file…" shortcut), the Microsoft 365 sign-in, and the
folders to copy. Everything it sets can be changed later in Settings and the main window.

Settings are written as each page is left, secrets go to the vault only. Where the PC has no OS
credential store the officer sees a warning and must tick that the key may live in a file only
they can read (``vault_backend=file``); there is no silent fallback.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from celeste_desktop.auth.session import Account, http_options_for
from celeste_desktop.auth.vault import Vault
from celeste_desktop.cli.config_cmd import config_import
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import Settings, load_settings, parse_value, save_settings
from celeste_desktop.domain.errors import CelesteError, ConfigError, VaultError
from celeste_desktop.domain.models import Drive, SelectionEntry
from celeste_desktop.gui.connect_dialog import ConnectDialog, SignInSession
from celeste_desktop.gui.folder_model import FolderSource
from celeste_desktop.gui.folder_view import FolderPicker
from celeste_desktop.gui.settings_dialog import (
    ERROR_STYLE,
    ErrorLabel,
    fit_to_text,
    form,
    note,
    scrolling,
    set_invalid,
    setting_message,
    show_modal,
)
from celeste_desktop.net.clock import SystemClock
from celeste_desktop.net.http import make_async_client
from celeste_desktop.net.policy import RetryPolicy
from celeste_desktop.storage.check import CheckItem, DestinationReport, check_destination

__all__ = [
    "BackendFactory",
    "FirstRunWizard",
    "WizardBackend",
    "check_supabase",
    "run_first_run_wizard",
]

WELCOME, KEY_STORAGE, DESTINATION, MICROSOFT, FOLDERS, FINISH = range(6)


class AccountSession(SignInSession, Protocol):
    def current_account(self) -> Account | None: ...


class WizardBackend(Protocol):
    """What the sign-in and folder pages need, opened for the saved settings."""

    @property
    def session(self) -> AccountSession: ...

    @property
    def folder_source(self) -> FolderSource: ...

    async def save_selection(self, entries: Sequence[SelectionEntry], drives: Sequence[Drive]) -> None: ...

    async def aclose(self) -> None: ...


VaultFactory = Callable[[Settings], Vault]  # raises VaultError when no OS credential store exists
BackendFactory = Callable[[Settings, Vault], Awaitable[WizardBackend]]  # may raise ConfigError
DestinationCheck = Callable[[Settings, str], Awaitable[DestinationReport]]


async def check_supabase(settings: Settings, key: str, *, now: datetime | None = None) -> DestinationReport:
    """The Test connection button: ``storage.check.check_destination`` with a short retry budget."""
    try:
        client = make_async_client(http_options_for(settings))
    except ConfigError as exc:
        return DestinationReport((CheckItem("settings", False, exc.message, exc.setting),))
    # Two quick tries: the officer is waiting, and a slow link is reported, not retried for minutes.
    policy = RetryPolicy(clock=SystemClock(), max_attempts=2, base_delay=0.5, max_delay=2.0)
    try:
        return await check_destination(client, policy, settings, key, now=now or datetime.now(UTC))
    finally:
        await client.aclose()


def _title(page: QWizardPage, title: str, subtitle: str) -> None:
    page.setTitle(title)
    page.setSubTitle(subtitle)


def _scrolling_column(page: QWizardPage) -> tuple[QVBoxLayout, QScrollArea]:
    """The page's layout inside a scroll area: at 150 % on a small screen it scrolls, never clips."""
    content = QWidget()
    area = scrolling(content)
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return QVBoxLayout(content), area


class WelcomePage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard) -> None:
        super().__init__()
        self._wizard = wizard
        _title(self, "Set up CelesteOS Desktop", "This copies the yacht's documents to the fleet's CelesteOS.")
        column = QVBoxLayout(self)
        column.addWidget(
            note(
                "The next pages ask for:\n\n"
                "• the yacht's id and the fleet's Supabase address and keys (or a provisioning file from the office);\n"
                "• your Microsoft 365 sign-in, in this PC's browser or on a phone;\n"
                "• the OneDrive or SharePoint folders to copy.\n\n"
                "Everything can be changed later in Settings."
            )
        )
        column.addStretch(1)

    def nextId(self) -> int:
        return KEY_STORAGE if self._wizard.vault is None else DESTINATION


class KeyStoragePage(QWizardPage):
    """Shown only where no OS credential store exists: the officer must accept the key file."""

    def __init__(self, wizard: FirstRunWizard) -> None:
        super().__init__()
        self._wizard = wizard
        _title(self, "No secure credential store on this PC", "Choose where the key that protects secrets lives.")
        self.warning = note("")
        self.warning.setAccessibleName("Warning: no credential store")
        self.accept_box = QCheckBox("&Keep the key in a file only my user account can read")
        self.accept_box.setAccessibleName("Keep the key in a file only my user account can read")
        self.accept_box.toggled.connect(self.completeChanged)
        self.error = ErrorLabel()
        column, _area = _scrolling_column(self)
        column.addWidget(self.warning)
        column.addWidget(self.accept_box)
        column.addWidget(self.error)
        column.addStretch(1)

    def initializePage(self) -> None:
        problem = self._wizard.vault_problem
        self.warning.setText(
            f"⚠ {problem.message if problem else 'No OS credential store was found.'}\n\n"
            "Without one, the key that encrypts the saved sign-in and the yacht key can be kept in a file "
            f"that only your user account can read:\n{self._wizard.paths.key_file}\n\n"
            "Anyone who can sign in as you, or an administrator of this PC, could read it. If that is not "
            "acceptable, cancel, set up a credential store (e.g. GNOME Keyring) and start again."
        )

    def isComplete(self) -> bool:
        return self.accept_box.isChecked()

    def validatePage(self) -> bool:
        settings = self._wizard.settings.replace(vault_backend="file")
        try:
            save_settings(self._wizard.paths.settings_file, settings)
            self._wizard.vault = self._wizard.vault_factory(settings)
        except (OSError, CelesteError) as exc:
            self.error.show_message(f"The choice could not be saved: {exc}")
            return False
        self._wizard.settings = settings
        return True


_DESTINATION_FIELDS = (
    # (setting, label, placeholder, required)
    ("yacht_id", "&Yacht id:", "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f", True),
    ("supabase_url", "Supabase &URL:", "https://abcd.supabase.co", True),
    ("supabase_anon_key", "Public (&anon) key:", "the project's anon / publishable key", True),
    ("supabase_key", "Yacht &key:", "the yacht key (kept in the vault)", True),
    ("bucket", "Bu&cket:", "documents", True),
    ("tenant", "T&enant:", "contoso.onmicrosoft.com, a tenant id, or organizations", True),
    ("client_id", "Application (client) &id:", "Application (client) id of the app registration", True),
)


class DestinationPage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard) -> None:
        super().__init__()
        self._wizard = wizard
        self._task: asyncio.Task[None] | None = None
        self._touched: set[str] = set()
        self._remote: dict[str, str] = {}  # problems the last Test connection blamed on a field
        _title(self, "Fleet and Supabase", "Where the documents go. A provisioning file from the office fills all.")
        self.import_button = QPushButton("Im&port provisioning file…")
        self.import_button.setAccessibleName("Import provisioning file")
        self.import_button.clicked.connect(self._choose_file)
        self.import_status = note("")
        self.import_status.setAccessibleName("Import result")
        self.import_status.hide()  # shown with the first message
        self.edits: dict[str, QLineEdit] = {}
        self.errors: dict[str, ErrorLabel] = {}
        fleet, microsoft = form(), form()
        for name, label, placeholder, _required in _DESTINATION_FIELDS:
            edit = QLineEdit()
            edit.setPlaceholderText(placeholder)
            edit.setAccessibleName(label.replace("&", "").rstrip(":"))
            edit.textEdited.connect(lambda _text, name=name: self._edited(name))
            caption = QLabel(label)
            caption.setBuddy(edit)
            cell, error = QWidget(), ErrorLabel()
            cell_column = QVBoxLayout(cell)
            cell_column.setContentsMargins(0, 0, 0, 0)
            cell_column.addWidget(edit)
            cell_column.addWidget(error)
            (microsoft if name in ("tenant", "client_id") else fleet).addRow(caption, cell)
            self.edits[name], self.errors[name] = edit, error
        self.edits["supabase_key"].setEchoMode(QLineEdit.EchoMode.Password)
        self.test_button = QPushButton("&Test connection")
        self.test_button.setAccessibleName("Test connection to Supabase")
        self.test_button.clicked.connect(self.start_test)
        self.results = note("")
        self.results.setAccessibleName("Test connection results")
        fleet_box, microsoft_box = QGroupBox("Yacht and Supabase project"), QGroupBox("Microsoft 365 app registration")
        fleet_box.setLayout(fleet)
        microsoft_box.setLayout(microsoft)
        top = QHBoxLayout()
        top.addWidget(self.import_button)
        top.addStretch(1)
        test = QHBoxLayout()
        test.addWidget(self.test_button)
        test.addStretch(1)
        column, self._area = _scrolling_column(self)
        column.addLayout(top)
        column.addWidget(self.import_status)
        column.addWidget(fleet_box)
        column.addLayout(test)
        column.addWidget(self.results)
        column.addWidget(microsoft_box)
        column.addStretch(1)

    def initializePage(self) -> None:
        # Tab follows the page top to bottom: the button sits between the two groups. (Set here:
        # both ends must already be in the wizard's window.)
        QWidget.setTabOrder(self.edits["bucket"], self.test_button)
        QWidget.setTabOrder(self.test_button, self.edits["tenant"])
        self.fill()

    def fill(self) -> None:
        """Show the saved settings and the yacht key from the vault."""
        settings = self._wizard.settings
        for name, edit in self.edits.items():
            edit.setText("" if name == "supabase_key" else str(getattr(settings, name)))
            edit.setCursorPosition(0)  # long keys show their start
        vault = self._wizard.vault
        try:
            self.edits["supabase_key"].setText((vault.get("supabase_key") if vault else None) or "")
        except VaultError as exc:
            self._say(f"⚠ {exc.message}")
        self.validate()

    def _say(self, text: str) -> None:
        self.import_status.show()  # before the text: see ErrorLabel.show_message
        self.import_status.setText(text)

    def _edited(self, name: str) -> None:
        self._touched.add(name)
        self._remote.pop(name, None)
        self.validate()

    def problems(self) -> dict[str, str]:
        """A message per field that is invalid or still empty."""
        problems: dict[str, str] = {}
        for name, label, _placeholder, required in _DESTINATION_FIELDS:
            text = self.edits[name].text().strip()
            words = label.replace("&", "").rstrip(":").lower().replace("(anon)", "anon")
            if not text and required:
                problems[name] = f"{words} is needed: type it or import the provisioning file"
            elif name != "supabase_key":
                try:
                    parse_value(name, text)
                except ConfigError as exc:
                    problems[name] = setting_message(exc, words)
        return problems

    def candidate(self) -> Settings:
        """The settings as typed (valid fields only)."""
        values = {}
        for name, edit in self.edits.items():
            if name != "supabase_key":
                try:
                    values[name] = parse_value(name, edit.text())
                except ConfigError:
                    continue
        return self._wizard.settings.replace(**values)

    def validate(self) -> None:
        problems = self.problems()
        for name, edit in self.edits.items():
            text = edit.text().strip()
            shown = problems.get(name) if (text or name in self._touched) else None
            set_invalid(edit, self.errors[name], shown or self._remote.get(name))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.problems()

    # -- import --------------------------------------------------------------------------------

    def _choose_file(self) -> None:
        chooser = QFileDialog(self, "Import provisioning file", "", "Provisioning files (*.json);;All files (*)")
        chooser.setFileMode(QFileDialog.FileMode.ExistingFile)
        chooser.fileSelected.connect(self.import_file)
        chooser.open()  # not exec(): no nested event loop under qasync

    def import_file(self, path: str) -> bool:
        """Apply a provisioning file (settings to the file, secrets to the vault) and show it."""
        report = io.StringIO()
        try:
            code = config_import(self._wizard.paths.settings_file, path, self._wizard.vault, io.StringIO(), report)
            self._wizard.settings = load_settings(self._wizard.paths.settings_file)
        except CelesteError as exc:
            message = setting_message(exc) if isinstance(exc, ConfigError) else exc.message
            self._say(f"⚠ Nothing was imported: {message}")
            return False
        lines = [line for line in report.getvalue().splitlines() if line.startswith("UNKNOWN")]
        summary = f"Imported {path}." + (" Check with the office: " + "; ".join(lines) if code else "")
        self._say(summary)
        self._touched.clear()
        self._remote.clear()
        self.fill()
        return True

    # -- Test connection -----------------------------------------------------------------------

    def start_test(self) -> asyncio.Task[None]:
        """Run the check on the event loop (it only waits on the network); results appear per line."""
        self.stop_test()
        self.results.setText("Testing the connection to Supabase…")
        self.test_button.setEnabled(False)
        self._task = asyncio.ensure_future(self._test(self.candidate(), self.edits["supabase_key"].text().strip()))
        return self._task

    async def _test(self, settings: Settings, key: str) -> None:
        try:
            report = await self._wizard.check(settings, key)
        finally:
            self.test_button.setEnabled(True)
        self.show_report(report)

    def show_report(self, report: DestinationReport) -> None:
        tables = [item for item in report.items if item.name.startswith("table ")]
        items: list[CheckItem] = [item for item in report.items if item not in tables or not item.ok]
        if tables and all(item.ok for item in tables):  # one line for the passing tables
            items.append(CheckItem("tables", True, f"all {len(tables)} tables are ready"))
        lines = [("✔ " if item.ok else "✘ ") + item.message for item in items]
        header = "Connection works." if report.ok else "The connection test found problems:"
        self.results.setText("\n".join([header, *lines]))
        self.results.setAccessibleDescription(self.results.text())
        self._remote = {item.setting: item.message for item in report.problems if item.setting in self.edits}
        self.validate()
        self._area.ensureWidgetVisible(self.results)

    def stop_test(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            self.test_button.setEnabled(True)
        self._task = None

    def cleanupPage(self) -> None:
        self.stop_test()

    def validatePage(self) -> bool:
        self.stop_test()
        settings = self.candidate()
        vault = self._wizard.vault
        try:
            save_settings(self._wizard.paths.settings_file, settings)
            if vault is not None:
                vault.set("supabase_key", self.edits["supabase_key"].text().strip())
        except (OSError, CelesteError) as exc:
            self._say(f"⚠ The settings could not be saved: {exc}")
            return False
        self._wizard.settings = settings
        return True


class MicrosoftPage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard) -> None:
        super().__init__()
        self._wizard = wizard
        self._connecting: asyncio.Task[None] | None = None
        self._opening: asyncio.Task[None] | None = None
        self.connect_dialog: ConnectDialog | None = None
        _title(self, "Connect to Microsoft 365", "Sign in with the account that can read the yacht's documents.")
        self.status = note("")
        self.status.setAccessibleName("Microsoft 365 connection")
        self.connect_button = QPushButton("&Connect to Microsoft 365…")
        self.connect_button.setAccessibleName("Connect to Microsoft 365")
        self.connect_button.clicked.connect(self.start_connect)
        row = QHBoxLayout()
        row.addWidget(self.connect_button)
        row.addStretch(1)
        column = QVBoxLayout(self)
        column.addWidget(self.status)
        column.addLayout(row)
        column.addWidget(
            note(
                "You can sign in in this PC's browser, or with a code on a phone when the browser is locked "
                "down. Without a connection you can finish now and connect later from the main window; the "
                "folders are chosen after connecting."
            )
        )
        column.addStretch(1)

    def initializePage(self) -> None:
        self.connect_button.setEnabled(False)
        self.status.setText("Preparing the Microsoft 365 sign-in…")
        self._opening = asyncio.ensure_future(self._open())
        self.completeChanged.emit()

    async def _open(self) -> None:
        try:
            await self._wizard.open_backend_for_settings()
        except CelesteError as exc:
            message = setting_message(exc) if isinstance(exc, ConfigError) else exc.message
            self.status.setText(f"⚠ {message}\nGo back and correct it, or finish and fix it in Settings.")
            return
        finally:
            self._opening = None
            self.completeChanged.emit()
        self.connect_button.setEnabled(True)
        self._show_account()

    def _show_account(self) -> None:
        account = self._wizard.account
        if account is None:
            self.status.setText("Not connected yet.")
        else:
            self.status.setText(f"Connected as {account.username} (tenant {account.tenant_id}).")
        self.completeChanged.emit()

    def start_connect(self) -> asyncio.Task[None] | None:
        backend = self._wizard.backend
        if backend is None or self._connecting is not None:
            return None
        self._connecting = asyncio.ensure_future(self._connect(backend.session))
        self.completeChanged.emit()
        return self._connecting

    async def _connect(self, session: AccountSession) -> None:
        wizard = self._wizard
        self.connect_dialog = ConnectDialog(
            session, wizard, browser_timeout=wizard.browser_timeout, open_browser=wizard.open_browser
        )
        try:
            account = await self.connect_dialog.run()
        finally:
            self._connecting = None
        if account is not None:
            wizard.account = account
        self._show_account()

    def isComplete(self) -> bool:
        return self._connecting is None and self._opening is None

    def nextId(self) -> int:
        return FOLDERS if self._wizard.account is not None and self._wizard.backend is not None else FINISH


class FoldersPage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard) -> None:
        super().__init__()
        self._wizard = wizard
        self.picker: FolderPicker | None = None
        _title(self, "Choose the folders to copy", "Tick folders; their subfolders come too unless you untick them.")
        self._column = QVBoxLayout(self)
        self._column.addWidget(
            note("Pick a drive or library, then tick folders. You can change this any time in the main window.")
        )

    def initializePage(self) -> None:
        backend = self._wizard.backend
        if backend is None:
            return
        if self.picker is not None:
            self.picker.shutdown()
            self.picker.deleteLater()
        self.picker = FolderPicker(backend.folder_source, parent=self)
        self._column.addWidget(self.picker, 1)
        self.picker.load_drives()

    def validatePage(self) -> bool:
        if self.picker is not None:
            self._wizard.start_saving(self.picker.selection(), self.picker.drives())
        return True


class FinishPage(QWizardPage):
    def __init__(self, wizard: FirstRunWizard) -> None:
        super().__init__()
        self._wizard = wizard
        _title(self, "Ready", "CelesteOS Desktop is set up.")
        self.summary = note("")
        self.summary.setAccessibleName("Summary")
        column = QVBoxLayout(self)
        column.addWidget(self.summary)
        column.addStretch(1)

    def initializePage(self) -> None:
        wizard = self._wizard
        account, folders = wizard.account, len(wizard.folders)
        if wizard.saving is not None:
            saved = "saving the choice…"
        elif wizard.save_problem:
            saved = f"⚠ the choice could not be saved ({wizard.save_problem}); go Back and try again"
        else:
            saved = f"{folders} ticked" if folders else "none ticked yet — tick them in the main window"
        signed_in = account.username if account else "not connected yet — use Connect in the main window"
        self.summary.setText(
            f"Yacht: {wizard.settings.yacht_id}\n"
            f"Supabase: {wizard.settings.supabase_url} (bucket {wizard.settings.bucket})\n"
            f"Microsoft 365: {signed_in}\nFolders: {saved}\n\n"
            "Bandwidth caps, sync times, the data budget and the proxy are in Settings."
        )
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self._wizard.saving is None and not self._wizard.save_problem


class FirstRunWizard(QWizard):
    """The wizard; ``settings``, ``account`` and ``folders`` say what was set up."""

    def __init__(
        self,
        paths: AppPaths,
        open_backend: BackendFactory,
        vault_factory: VaultFactory,
        *,
        check: DestinationCheck = check_supabase,
        browser_timeout: float = 300.0,
        open_browser: Callable[[str], bool] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set up CelesteOS Desktop")
        self.setStyleSheet(ERROR_STYLE)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.paths = paths
        self.open_backend = open_backend
        self.vault_factory = vault_factory
        self.check = check
        self.browser_timeout = browser_timeout
        self.open_browser = open_browser
        self.backend: WizardBackend | None = None
        self._backend_for: Settings | None = None
        self.account: Account | None = None
        self.folders: list[SelectionEntry] = []
        self.saving: asyncio.Task[None] | None = None
        self.save_problem = ""
        try:
            self.settings = load_settings(paths.settings_file)
        except ConfigError:
            self.settings = Settings()  # the wizard rewrites what it needs
        self.vault: Vault | None = None
        self.vault_problem: VaultError | None = None
        try:
            self.vault = self.vault_factory(self.settings)
        except VaultError as exc:
            self.vault_problem = exc
        for page_id, page_type in (
            (WELCOME, WelcomePage),
            (KEY_STORAGE, KeyStoragePage),
            (DESTINATION, DestinationPage),
            (MICROSOFT, MicrosoftPage),
            (FOLDERS, FoldersPage),
            (FINISH, FinishPage),
        ):
            self.setPage(page_id, page_type(self))
        fit_to_text(self, 100, 40)

    async def open_backend_for_settings(self) -> WizardBackend:
        """The backend for the current settings; reopened when they changed since the last one."""
        if self.backend is not None and self._backend_for == self.settings:
            return self.backend
        await self.close_backend()
        if self.vault is None:
            raise VaultError("The vault is not open yet; go back to the first pages.")
        self.backend = await self.open_backend(self.settings, self.vault)
        self._backend_for = self.settings
        try:
            self.account = await asyncio.to_thread(self.backend.session.current_account)
        except VaultError:
            self.account = None
        return self.backend

    async def close_backend(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            await backend.aclose()

    def start_saving(self, entries: Sequence[SelectionEntry], drives: Sequence[Drive]) -> None:
        """Save the ticks in the background; the Finish page waits for it."""
        self.folders = [entry for entry in entries if entry.included]
        self.save_problem = ""
        if self.backend is not None:
            self.saving = asyncio.ensure_future(self._save(self.backend, list(entries), list(drives)))

    async def _save(self, backend: WizardBackend, entries: list[SelectionEntry], drives: list[Drive]) -> None:
        try:
            await backend.save_selection(entries, drives)
        except (OSError, CelesteError) as exc:
            self.save_problem = str(exc)
        finally:
            self.saving = None
            if self.currentId() == FINISH:
                self.currentPage().initializePage()

    async def run(self) -> bool:
        """Show the wizard until it closes; True when finished, False when cancelled."""
        try:
            return await show_modal(self) == QWizard.DialogCode.Accepted.value
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        picker = self.page(FOLDERS)
        if isinstance(picker, FoldersPage) and picker.picker is not None:
            picker.picker.shutdown()
        destination = self.page(DESTINATION)
        if isinstance(destination, DestinationPage):
            destination.stop_test()
        if self.saving is not None:
            await asyncio.gather(self.saving, return_exceptions=True)
        await self.close_backend()


async def run_first_run_wizard(
    parent: QWidget | None,
    paths: AppPaths,
    open_backend: BackendFactory,
    vault_factory: VaultFactory,
    *,
    browser_timeout: float = 300.0,
) -> bool:
    """Show the wizard (window-modal, no nested event loop); True when the officer finished it."""
    wizard = FirstRunWizard(paths, open_backend, vault_factory, browser_timeout=browser_timeout, parent=parent)
    try:
        return await wizard.run()
    finally:
        wizard.deleteLater()
