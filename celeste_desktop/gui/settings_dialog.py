"""The Settings dialog: transfers, destination, network and general settings in tabs.

Every field is checked with ``config.settings.parse_value``, so a message names the setting and
the fix; an invalid field is outlined and its message shown under it, and OK and Apply stay
disabled until every field is valid. Apply writes the settings file atomically. The helpers at
the top (error labels, the outline) are shared with the first-run wizard.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from celeste_desktop.config.settings import (
    CLOUD_PRESETS,
    SPECS,
    Settings,
    load_settings,
    parse_value,
    save_settings,
)
from celeste_desktop.domain.errors import CelesteError, ConfigError

__all__ = [
    "ERROR_STYLE",
    "ErrorLabel",
    "SecretStore",
    "SettingsDialog",
    "edit_settings",
    "fit_to_text",
    "scrolling",
    "set_invalid",
    "setting_message",
    "show_modal",
]

# A red that reads on light and dark backgrounds; the message text always says it in words too.
_ERROR_RED = "#d64545"
ERROR_STYLE = f'*[invalid="true"] {{ border: 2px solid {_ERROR_RED}; }} QLabel[role="error"] {{ color: {_ERROR_RED}; }}'
_UNITS = (("kbit/s", "kbit"), ("Mbit/s", "mbit"), ("KB/s", "kb"), ("MB/s", "mb"))
_RATE_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*(?:/\s*s)?\s*$", re.IGNORECASE)


class SecretStore(Protocol):
    """The part of the vault the dialog uses to replace the yacht key."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...


def setting_message(error: ConfigError, label: str | None = None) -> str:
    """``yacht id must be a UUID like 3f2b…``: the setting in words, then the fix."""
    name = label or error.setting.replace("_", " ")
    reason = error.message.removeprefix(f"{error.setting}: ")
    joiner = " " if reason.startswith(("must ", "is ", "does ")) else ": "
    return f"{name}{joiner}{reason}"


class ErrorLabel(QLabel):
    """The message under a field; hidden while the field is valid."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "error")
        self.setWordWrap(True)
        self.hide()

    def show_message(self, message: str | None) -> None:
        # Shown before the text changes: a hidden label's new text does not reach the layouts'
        # cached height-for-width, and the message would be clipped to the old height.
        self.setVisible(bool(message))
        self.setText(f"⚠ {message}" if message else "")
        self.updateGeometry()
        cell = self.parentWidget()
        if cell is not None:
            cell.updateGeometry()


def set_invalid(widget: QWidget, label: ErrorLabel, message: str | None) -> None:
    """Outline ``widget`` and show ``message`` under it; ``None`` clears both."""
    if bool(widget.property("invalid")) != bool(message):
        widget.setProperty("invalid", bool(message))
        widget.style().unpolish(widget)
        widget.style().polish(widget)
    # Screen readers read the description with the field, so the reason is heard too.
    widget.setAccessibleDescription(message or "")
    label.show_message(message)


def with_error(field: QWidget, error: ErrorLabel) -> QWidget:
    """A field with its error label underneath, as one form cell."""
    cell = QWidget()
    column = QVBoxLayout(cell)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(2)
    column.addWidget(field)
    column.addWidget(error)
    return cell


def note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def scrolling(content: QWidget) -> QScrollArea:
    """``content`` in a frameless scroll area, so a small screen at 150 % scrolls instead of clipping."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(content)
    return area


def fit_to_text(window: QWidget, columns: int, lines: int) -> None:
    """Size a window in characters and lines of its font, within 90 % of the screen."""
    metrics = window.fontMetrics()
    width, height = metrics.averageCharWidth() * columns, metrics.lineSpacing() * lines
    screen = window.screen()
    if screen is not None:
        available = screen.availableGeometry()
        width, height = min(width, available.width() * 9 // 10), min(height, available.height() * 9 // 10)
    window.resize(width, height)


class SavingDialog(QDialog):
    """A dialog whose OK saves (``apply()``, False when it could not) and whose ``run()`` gives
    the settings it saved, or None."""

    saved: Settings | None = None

    def apply(self) -> bool:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def _ok(self) -> None:
        if self.apply():
            self.accept()

    async def run(self) -> Settings | None:
        """Show the dialog until it closes; the settings saved (by OK, or Apply), or None."""
        await show_modal(self)
        return self.saved


async def show_modal(dialog: QDialog) -> int:
    """Show ``dialog`` window-modal with ``open()`` and wait on the qasync loop for its result.

    ``exec()`` would start a nested event loop, which qasync cannot run tasks inside.
    """
    finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def closed(result: int) -> None:
        if not finished.done():
            finished.set_result(result)

    dialog.finished.connect(closed)
    dialog.open()
    try:
        return await finished
    finally:
        dialog.finished.disconnect(closed)
        if dialog.isVisible():
            dialog.reject()


def form() -> QFormLayout:
    layout = QFormLayout()
    # Long labels move above their field instead of squeezing it: nothing clips at 150 %.
    layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return layout


class RateEdit(QWidget):
    """A bandwidth cap: a number and a unit; 0 or empty means no cap."""

    changed = Signal()

    def __init__(self, name: str, value: str) -> None:
        super().__init__()
        self.number = QLineEdit()
        self.number.setPlaceholderText("0 = no limit")
        self.number.setAccessibleName(f"{name} (number)")
        self.unit = QComboBox()
        self.unit.setAccessibleName(f"{name} (unit)")
        for label, unit in _UNITS:
            self.unit.addItem(label, unit)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.number, 1)
        row.addWidget(self.unit)
        self.set_value(value)
        self.number.textChanged.connect(self.changed)
        self.unit.currentIndexChanged.connect(self.changed)

    def set_value(self, value: str) -> None:
        match = _RATE_TEXT.match(value or "0")
        number, unit = (match.group(1), match.group(2).lower()) if match else (value, "mbit")
        if number in ("0", "0.0"):
            number, unit = "0", "mbit"
        row = self.unit.findData(unit or "b")
        if row < 0:  # a unit typed in the CLI (KiB, b…): keep it rather than change the value
            self.unit.addItem(f"{unit or 'bytes'}/s", unit or "b")
            row = self.unit.count() - 1
        self.unit.setCurrentIndex(row)
        self.number.setText(number)

    def value(self) -> str:
        number = self.number.text().strip()
        if not number or number in ("0", "0.0"):
            return "0"
        return f"{number}{self.unit.currentData()}"


@dataclass
class _Field:
    name: str
    widget: QWidget
    read: Callable[[], Any]
    error: ErrorLabel
    tab: int


class SettingsDialog(SavingDialog):
    """Edit the settings; OK or Apply saves them. ``saved`` is the last saved Settings, or None.

    ``set_start_at_login(enabled)`` (gui/autostart.py) is called when that box changes, before
    the file is written; ``secrets`` lets the yacht key be replaced in the vault.
    """

    applied = Signal(object)  # the Settings just written

    def __init__(
        self,
        settings: Settings,
        settings_file: Path,
        *,
        set_start_at_login: Callable[[bool], None] | None = None,
        secrets: SecretStore | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — CelesteOS Desktop")
        self.setStyleSheet(ERROR_STYLE)
        self._original = settings
        self._settings_file = settings_file
        self._set_start_at_login = set_start_at_login
        self._secrets = secrets
        self._fields: dict[str, _Field] = {}
        self.saved: Settings | None = None

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Settings sections")
        for title, build in (
            ("&Transfers", self._transfers_tab),
            ("&Destination", self._destination_tab),
            ("&Network", self._network_tab),
            ("&General", self._general_tab),
        ):
            page = QWidget()
            build(page, self.tabs.count())
            self.tabs.addTab(scrolling(page), title)
        self.summary = ErrorLabel()
        self.summary.setAccessibleName("Settings that need attention")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.ok_button.setAccessibleName("Save settings and close")
        self.apply_button.setAccessibleName("Save settings")
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self.apply)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        self._update_enabled()
        self.validate()
        fit_to_text(self, 90, 44)

    # -- building ------------------------------------------------------------------------------

    def _add(
        self, layout: QFormLayout, label: str, name: str, widget: QWidget, read: Callable[[], Any], tab: int
    ) -> None:
        error = ErrorLabel()
        widget.setToolTip(SPECS[name].help if name in SPECS else "")
        if label:
            caption = QLabel(label)
            caption.setBuddy(widget)
            widget.setAccessibleName(label.replace("&", "").rstrip(":"))
            layout.addRow(caption, with_error(widget, error))
        else:  # a check box carries its own text and name, across both columns
            layout.addRow(with_error(widget, error))
        self._fields[name] = _Field(name, widget, read, error, tab)

    def _line(self, value: str, placeholder: str = "") -> QLineEdit:
        edit = QLineEdit(value)
        edit.setPlaceholderText(placeholder)
        edit.textChanged.connect(self.validate)
        return edit

    def _spin(self, value: int, low: int, high: int, suffix: str = "", zero: str = "") -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSuffix(suffix)
        if zero:
            spin.setSpecialValueText(zero)
        spin.valueChanged.connect(self.validate)
        return spin

    def _add_spin(
        self,
        layout: QFormLayout,
        label: str,
        name: str,
        tab: int,
        limits: tuple[int, int],
        suffix: str = "",
        zero: str = "",
    ) -> None:
        spin = self._spin(getattr(self._original, name), *limits, suffix, zero)
        self._add(layout, label, name, spin, spin.value, tab)

    def _check(self, text: str, value: bool) -> QCheckBox:
        box = QCheckBox(text)
        box.setChecked(value)
        box.setAccessibleName(text.replace("&", ""))
        box.toggled.connect(self.validate)
        return box

    def _transfers_tab(self, page: QWidget, tab: int) -> None:
        s = self._original
        caps = QGroupBox("Bandwidth caps")
        caps_form = form()
        self.upload_limit = RateEdit("Upload cap", s.upload_limit)
        self.download_limit = RateEdit("Download cap", s.download_limit)
        for edit, label, name in (
            (self.upload_limit, "&Upload cap:", "upload_limit"),
            (self.download_limit, "Do&wnload cap:", "download_limit"),
        ):
            edit.changed.connect(self.validate)
            self._add(caps_form, label, name, edit, edit.value, tab)
            self._fields[name].widget = edit.number  # the part that gets outlined and focused
        caps_form.addRow(note("0 means no cap. A cap keeps the satellite link usable for the crew."))
        caps.setLayout(caps_form)

        windows = QGroupBox("When syncing may run")
        column = QVBoxLayout(windows)
        self.schedule = QListWidget()
        self.schedule.setAccessibleName("Sync windows")
        self.schedule.setAccessibleDescription("Each line is a window like 22:00-06:00 in this PC's local time")
        self.schedule.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        # As tall as its windows (at least four lines), not as tall as the tab.
        self.schedule.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.schedule.setMinimumHeight(self.fontMetrics().lineSpacing() * 4)
        for window in s.schedule:
            self._add_window(window)
        self.schedule.itemChanged.connect(self.validate)
        add = QPushButton("&Add window")
        add.setAccessibleName("Add a sync window")
        add.clicked.connect(self._new_window)
        remove = QPushButton("&Remove window")
        remove.setAccessibleName("Remove the selected sync window")
        remove.clicked.connect(self._remove_window)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        schedule_error = ErrorLabel()
        column.addWidget(
            note(
                "Empty list: any time. 24-hour local time, e.g. 22:00-06:00 for overnight; "
                "F2 edits the selected window."
            )
        )
        column.addWidget(self.schedule)
        column.addWidget(schedule_error)
        column.addLayout(buttons)
        self._fields["schedule"] = _Field("schedule", self.schedule, self._windows, schedule_error, tab)

        parallel = QGroupBox("Parallel transfers and limits")
        parallel_form = form()
        self._add_spin(parallel_form, "&Small files at once:", "concurrency_small", tab, (1, 32))
        self._add_spin(parallel_form, "&Large files at once:", "concurrency_large", tab, (1, 8))
        self._add_spin(parallel_form, "Skip files &over:", "max_file_size_mb", tab, (1, 250 * 1024), " MB")
        self._add_spin(parallel_form, "Attem&pts before giving up on a file:", "max_attempts", tab, (1, 100))
        parallel.setLayout(parallel_form)

        layout = QVBoxLayout(page)
        layout.addWidget(caps)
        layout.addWidget(windows)
        layout.addWidget(parallel)
        layout.addStretch(1)

    def _add_window(self, text: str) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        self.schedule.addItem(item)
        return item

    def _new_window(self) -> None:
        item = self._add_window("22:00-06:00")
        self.schedule.setCurrentItem(item)
        self.schedule.editItem(item)
        self.validate()

    def _remove_window(self) -> None:
        row = self.schedule.currentRow()
        if row >= 0:
            self.schedule.takeItem(row)
            self.validate()

    def _windows(self) -> list[str]:
        return [self.schedule.item(row).text().strip() for row in range(self.schedule.count())]

    def _destination_tab(self, page: QWidget, tab: int) -> None:
        s = self._original
        where = QGroupBox("Yacht and Supabase project")
        where_form = form()
        for label, name, placeholder in (
            ("&Yacht id:", "yacht_id", "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"),
            ("Supabase &URL:", "supabase_url", "https://abcd.supabase.co"),
            ("Public (&anon) key:", "supabase_anon_key", "the project's anon / publishable key"),
            ("&Bucket:", "bucket", "documents"),
        ):
            edit = self._line(str(getattr(s, name)), placeholder)
            self._add(where_form, label, name, edit, edit.text, tab)
        if self._secrets is not None:
            self.yacht_key = self._line("", "stored in the vault; type a new key to replace it")
            self.yacht_key.setEchoMode(QLineEdit.EchoMode.Password)
            self._add(where_form, "Yacht &key:", "supabase_key", self.yacht_key, self.yacht_key.text, tab)
        where.setLayout(where_form)

        pipeline = QGroupBox("How documents reach CelesteOS")
        pipeline_form = form()
        self.pipeline_mode = QComboBox()
        self.pipeline_mode.addItem("Register (recommended)", "register")
        self.pipeline_mode.addItem("Digest (older ingest service)", "digest")
        self.pipeline_mode.setCurrentIndex(max(0, self.pipeline_mode.findData(s.pipeline_mode)))
        self.pipeline_mode.currentIndexChanged.connect(self.validate)
        self._add(
            pipeline_form, "&Pipeline mode:", "pipeline_mode", self.pipeline_mode, self.pipeline_mode.currentData, tab
        )
        pipeline_form.addRow(
            note(
                "Register uploads each file once and records it for the pipeline. Digest mode sends every "
                "byte twice over the link (once to storage, once to the digest service): use it only if "
                "the office asks."
            )
        )
        self.digest_url = self._line(s.digest_url, "https://digest.example.com")
        self._add(pipeline_form, "D&igest service URL:", "digest_url", self.digest_url, self.digest_url.text, tab)
        self.delete_objects = self._check(
            "Delete the stored &copy when a file is deleted in OneDrive", s.delete_objects_on_remove
        )
        self._add(
            pipeline_form, "", "delete_objects_on_remove", self.delete_objects, self.delete_objects.isChecked, tab
        )
        pipeline_form.addRow(note("Off (the default): copies stay in CelesteOS when files are removed from OneDrive."))
        pipeline.setLayout(pipeline_form)

        layout = QVBoxLayout(page)
        layout.addWidget(where)
        layout.addWidget(pipeline)
        layout.addStretch(1)

    def _network_tab(self, page: QWidget, tab: int) -> None:
        s = self._original
        connection = QGroupBox("Connection")
        connection_form = form()
        proxy = self._line(s.proxy, "http://proxy.example:3128 (empty: direct)")
        self._add(connection_form, "&Proxy:", "proxy", proxy, proxy.text, tab)
        self.ca_bundle = self._line(s.ca_bundle, "PEM file with extra CA certificates (optional)")
        browse = QPushButton("B&rowse…")
        browse.setAccessibleName("Choose the CA bundle file")
        browse.clicked.connect(self._choose_ca_bundle)
        row = QWidget()
        row_layout = QHBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.addWidget(self.ca_bundle, 1)
        row_layout.addWidget(browse)
        self._add(connection_form, "CA &bundle:", "ca_bundle", row, self.ca_bundle.text, tab)
        self._fields["ca_bundle"].widget = self.ca_bundle
        self.ca_bundle.setAccessibleName("CA bundle")
        trust = self._check("Trust the operating &system's certificates", s.use_system_trust)
        self._add(connection_form, "", "use_system_trust", trust, trust.isChecked, tab)
        connection.setLayout(connection_form)

        microsoft = QGroupBox("Microsoft 365")
        ms_form = form()
        self.cloud = QComboBox()
        for preset in CLOUD_PRESETS.values():
            self.cloud.addItem(preset.label, preset.name)
        self.cloud.addItem("Custom (give the addresses below)", "custom")
        self.cloud.setCurrentIndex(max(0, self.cloud.findData(s.cloud)))
        self.cloud.currentIndexChanged.connect(self.validate)
        self._add(ms_form, "National &cloud:", "cloud", self.cloud, self.cloud.currentData, tab)
        self.authority = self._line(s.authority)
        self._add(ms_form, "Sign-in &host:", "authority", self.authority, self.authority.text, tab)
        self.graph_url = self._line(s.graph_url)
        self._add(ms_form, "Graph &URL:", "graph_url", self.graph_url, self.graph_url.text, tab)
        tenant = self._line(s.tenant, "contoso.onmicrosoft.com, a tenant id, or organizations")
        self._add(ms_form, "T&enant:", "tenant", tenant, tenant.text, tab)
        client = self._line(s.client_id, "Application (client) id of the app registration")
        self._add(ms_form, "Application (client) &id:", "client_id", client, client.text, tab)
        sharepoint = self._check("Offer SharePoint &libraries (asks for Sites.Read.All)", s.include_sharepoint)
        self._add(ms_form, "", "include_sharepoint", sharepoint, sharepoint.isChecked, tab)
        microsoft.setLayout(ms_form)

        layout = QVBoxLayout(page)
        layout.addWidget(connection)
        layout.addWidget(microsoft)
        layout.addStretch(1)

    def _choose_ca_bundle(self) -> None:
        # open(), not exec(): no nested event loop under qasync.
        chooser = QFileDialog(self, "Choose the CA bundle (PEM)", str(Path(self.ca_bundle.text()).parent))
        chooser.setNameFilters(["Certificates (*.pem *.crt *.cer)", "All files (*)"])
        chooser.setFileMode(QFileDialog.FileMode.ExistingFile)
        chooser.fileSelected.connect(self.ca_bundle.setText)
        chooser.open()

    def _general_tab(self, page: QWidget, tab: int) -> None:
        s = self._original
        general = QGroupBox("Running")
        general_form = form()
        login = self._check("Start CelesteOS Desktop when I &log in", s.start_at_login)
        self._add(general_form, "", "start_at_login", login, login.isChecked, tab)
        metered = self._check("&Pause on metered networks", s.pause_on_metered)
        self._add(general_form, "", "pause_on_metered", metered, metered.isChecked, tab)
        self._add_spin(
            general_form, "&Sync every:", "sync_interval_minutes", tab, (0, 7 * 24 * 60), " min", "Manual only"
        )
        level = QComboBox()
        level.addItems(["DEBUG", "INFO", "WARNING", "ERROR"])
        level.setCurrentText(s.log_level)
        level.currentIndexChanged.connect(self.validate)
        self._add(general_form, "Log l&evel:", "log_level", level, level.currentText, tab)
        general.setLayout(general_form)

        budget = QGroupBox("Data budget")
        budget_form = form()
        self._add_spin(budget_form, "&Monthly budget:", "budget_monthly_mb", tab, (0, 10**9), " MB", "No limit")
        self._add_spin(budget_form, "Dail&y budget:", "budget_daily_mb", tab, (0, 10**9), " MB", "No limit")
        self._add_spin(budget_form, "Plan &resets on day:", "budget_reset_day", tab, (1, 28))
        budget_form.addRow(note(
            "Syncing pauses when a budget is used up, and resumes by itself when the plan (or, for the daily "
            "budget, the day) resets; the main window offers Sync anyway and Raise budget meanwhile."
        ))  # fmt: skip
        budget.setLayout(budget_form)

        layout = QVBoxLayout(page)
        layout.addWidget(general)
        layout.addWidget(budget)
        layout.addStretch(1)

    # -- validation and saving ---------------------------------------------------------------

    def collect(self) -> tuple[Settings, dict[str, str]]:
        """The settings as edited, and a message per invalid setting (empty when all valid)."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, field in self._fields.items():
            if name == "supabase_key":
                continue
            try:
                values[name] = parse_value(name, field.read())
            except ConfigError as exc:
                errors[name] = setting_message(exc)
                if isinstance(field.widget, QLineEdit) and isinstance(field.widget.parent(), RateEdit):
                    # The unit has its own list here, so only the number can be wrong.
                    errors[name] = f"{name.replace('_', ' ')} must be a number like 2 or 0.5 (0 for no cap)"
        if values.get("cloud") == "custom":
            for name, example in (
                ("authority", "https://login.microsoftonline.com"),
                ("graph_url", "https://graph.microsoft.com/v1.0"),
            ):
                if not values.get(name) and name not in errors:
                    errors[name] = f"{name.replace('_', ' ')} is needed for a custom cloud, like {example}"
        elif "cloud" in values:
            values["authority"] = values["graph_url"] = ""  # the preset's addresses apply
        if values.get("pipeline_mode") == "digest" and not values.get("digest_url") and "digest_url" not in errors:
            errors["digest_url"] = "digest url is needed in digest mode; give the digest service's address"
        settings = self._original.replace(**{k: v for k, v in values.items() if k not in errors})
        return settings, errors

    def validate(self) -> bool:
        self._update_enabled()
        _, errors = self.collect()
        for name, field in self._fields.items():
            set_invalid(field.widget, field.error, errors.get(name))
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for tab in range(self.tabs.count()):
            bad = any(self._fields[name].tab == tab for name in errors)
            self.tabs.setTabIcon(tab, warning if bad else QIcon())
        if errors:
            names = ", ".join(name.replace("_", " ") for name in errors)
            self.summary.show_message(f"Fix {len(errors)} setting{'s' if len(errors) > 1 else ''} first: {names}.")
        else:
            self.summary.show_message(None)
        self.ok_button.setEnabled(not errors)
        self.apply_button.setEnabled(not errors)
        return not errors

    def _update_enabled(self) -> None:
        custom = self.cloud.currentData() == "custom"
        preset = CLOUD_PRESETS.get(str(self.cloud.currentData()))
        for edit, value in (
            (self.authority, preset.authority if preset else ""),
            (self.graph_url, preset.graph_url if preset else ""),
        ):
            edit.setEnabled(custom)
            edit.setPlaceholderText(value if preset else "https://…")
        self.digest_url.setEnabled(self.pipeline_mode.currentData() == "digest")

    def apply(self) -> bool:
        """Save the settings (and a new yacht key); False with the reason shown when not possible."""
        if not self.validate():
            return False
        settings, _ = self.collect()
        previous = self.saved or self._original
        login = self._fields["start_at_login"]
        if settings.start_at_login != previous.start_at_login and self._set_start_at_login is not None:
            try:
                self._set_start_at_login(settings.start_at_login)
            except (OSError, CelesteError) as exc:
                set_invalid(login.widget, login.error, f"start at login could not be changed: {exc}")
                return False
        try:
            save_settings(self._settings_file, settings)
            key = self.yacht_key.text().strip() if self._secrets is not None else ""
            if key and self._secrets is not None:
                self._secrets.set("supabase_key", key)
                self.yacht_key.clear()
        except (OSError, CelesteError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            self.summary.show_message(f"The settings could not be saved to {self._settings_file}: {reason}")
            return False
        self.saved = settings
        self.applied.emit(settings)
        return True



async def edit_settings(
    parent: QWidget | None,
    settings_file: Path,
    *,
    set_start_at_login: Callable[[bool], None] | None = None,
    secrets: SecretStore | None = None,
) -> bool:
    """The Settings dialog for the settings file as it is now; True when something was saved."""
    settings = await asyncio.to_thread(load_settings, settings_file)
    dialog = SettingsDialog(
        settings, settings_file, set_start_at_login=set_start_at_login, secrets=secrets, parent=parent
    )
    try:
        return await dialog.run() is not None
    finally:
        dialog.deleteLater()
