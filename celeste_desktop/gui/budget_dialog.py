"""Raise budget…: the banner's small dialog on the data budget while syncing waits for it.

It shows what is used in this plan period and today, takes a new monthly and daily budget, and
says before saving whether syncing resumes at once with them. Only the budget fields of the
settings file change; the caller applies the saved budget to the running services.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox, QFormLayout, QPushButton, QSpinBox, QVBoxLayout, QWidget

from celeste_desktop.config.settings import Settings, load_settings, save_settings
from celeste_desktop.domain.errors import CelesteError
from celeste_desktop.engine.budget import MB, BudgetLevel, BudgetStatus, budget_status
from celeste_desktop.gui.settings_dialog import ERROR_STYLE, ErrorLabel, SavingDialog, fit_to_text, form, note

__all__ = ["BudgetDialog"]

_MAX_MB = 10**9


def _mb(nbytes: int) -> str:
    return f"{nbytes / MB:,.0f} MB" if nbytes >= 10 * MB else f"{nbytes / MB:,.1f} MB"


class BudgetDialog(SavingDialog):
    """A new monthly and daily budget; OK ("Raise and resume") only once syncing could resume."""

    def __init__(
        self, settings: Settings, status: BudgetStatus, settings_file: Path, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Raise the data budget")
        self.setAccessibleName("Raise the data budget")
        self.setStyleSheet(ERROR_STYLE)
        self._settings = settings
        self._status = status
        self._settings_file = settings_file
        self.saved: Settings | None = None

        period = status.period
        used = note(
            f"Used since {period.start:%d %b}: {_mb(status.monthly_used)}; today: {_mb(status.daily_used)}. "
            f"The plan resets on {period.reset:%d %b %Y}."
        )
        used.setAccessibleName("Data used")
        self.monthly = self._spin(settings.budget_monthly_mb, "Monthly budget")
        self.daily = self._spin(settings.budget_daily_mb, "Daily budget")
        fields: QFormLayout = form()
        fields.addRow("&Monthly budget:", self.monthly)
        fields.addRow("Dail&y budget:", self.daily)
        self.outcome = note("")
        self.outcome.setAccessibleName("What the new budget does")
        self.problem = ErrorLabel()
        self.problem.setAccessibleName("Why the budget cannot be saved")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        assert isinstance(ok, QPushButton)
        self.ok_button: QPushButton = ok
        self.ok_button.setText("&Raise and resume")
        self.ok_button.setAccessibleName("Save the new budget and resume syncing")
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(used)
        layout.addLayout(fields)
        layout.addWidget(self.outcome)
        layout.addWidget(self.problem)
        layout.addWidget(note("The other settings stay as they are; the plan's reset day is in Settings."))
        layout.addWidget(buttons)
        # The limit that stopped the sync is the one to raise.
        binding = self.daily if status.daily_limit and status.daily_used >= status.daily_limit else self.monthly
        binding.setFocus()
        binding.selectAll()
        self.update_outcome()
        fit_to_text(self, 70, 16)

    def _spin(self, value: int, name: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(0, _MAX_MB)
        spin.setSuffix(" MB")
        spin.setSpecialValueText("No limit")
        spin.setValue(value)
        spin.setAccessibleName(name)
        spin.valueChanged.connect(self.update_outcome)
        return spin

    def proposed(self) -> BudgetStatus:
        """The budget as it would stand with the values in the dialog."""
        status = self._status
        return budget_status(
            today=status.today or status.period.start, reset_day=self._settings.budget_reset_day,
            monthly_mb=self.monthly.value(), daily_mb=self.daily.value(), monthly_used=status.monthly_used,
            daily_used=status.daily_used,
        )  # fmt: skip

    def update_outcome(self) -> None:
        proposed = self.proposed()
        blocked = proposed.level is BudgetLevel.EXHAUSTED
        left = proposed.remaining
        self.outcome.setText(
            "" if blocked else "Syncing resumes at once" + (f", with {_mb(left)} left." if left else " with no limit.")
        )
        self.outcome.setVisible(not blocked)
        self.problem.show_message(
            "Still at or below what is already used, so syncing would stay paused: choose a higher budget."
            if blocked
            else None
        )
        self.ok_button.setEnabled(not blocked)

    def apply(self) -> bool:
        """Write the budget fields to the settings file as it is now; False with the reason shown."""
        if self.proposed().level is BudgetLevel.EXHAUSTED:
            return False
        try:
            current = load_settings(self._settings_file)
            settings = current.replace(budget_monthly_mb=self.monthly.value(), budget_daily_mb=self.daily.value())
            save_settings(self._settings_file, settings)
        except (OSError, CelesteError) as exc:
            self.problem.show_message(f"The budget could not be saved to {self._settings_file}: {exc}")
            return False
        self.saved = settings
        return True

