"""The stand-in sign-in dialog: the device code to enter on any device, and Cancel.

The controller uses it until the Connect dialog is wired in, and the self-test uses it because
the simulated Entra ID approves the code by itself.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from celeste_desktop.auth.flows import DeviceCodePrompt


class DeviceCodeDialog(QDialog):
    """Shows the sign-in code; Cancel stops the sign-in. Opened with ``open()``, never ``exec()``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to Microsoft 365")
        self.label = QLabel("Asking Microsoft for a sign-in code…")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName("Sign-in code")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)
        self.setMinimumWidth(self.fontMetrics().averageCharWidth() * 60)

    def show_code(self, prompt: DeviceCodePrompt) -> None:
        self.label.setText(
            prompt.message or f"Open {prompt.verification_uri} on any device and enter the code {prompt.user_code}."
        )
