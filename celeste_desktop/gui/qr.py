"""A QR code widget: the ``qrcode`` package computes the module matrix, QPainter draws it.

Used by the device-code sign-in so the officer can open Microsoft's sign-in page on a phone
when the bridge PC's browser is locked down. No image files or Pillow are involved.
"""

from __future__ import annotations

import qrcode
import qrcode.constants
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["QrCodeWidget", "qr_matrix"]

# Scanners need dark modules on a light ground whatever the desktop theme, so these two colours
# are fixed on purpose (a dark-theme palette would invert the code and many phones refuse that).
_LIGHT = QColor(255, 255, 255)
_DARK = QColor(0, 0, 0)
_QUIET_ZONE = 4  # modules of light border the QR standard asks for


def qr_matrix(text: str) -> list[list[bool]]:
    """The modules of ``text``'s QR code (True is dark), quiet zone included."""
    code = qrcode.QRCode(border=_QUIET_ZONE, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    return [[bool(module) for module in row] for row in code.get_matrix()]


class QrCodeWidget(QWidget):
    """Draws the QR code of one text, square, as large as the layout allows."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._matrix: list[list[bool]] = []
        sizing = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        sizing.setHeightForWidth(True)
        self.setSizePolicy(sizing)
        self.set_text(text)

    def text(self) -> str:
        return self._text

    def matrix(self) -> list[list[bool]]:
        return [list(row) for row in self._matrix]

    def set_text(self, text: str) -> None:
        self._text = text
        self._matrix = qr_matrix(text) if text else []
        self.setAccessibleName("QR code of the sign-in address" if text else "QR code (empty)")
        self.setAccessibleDescription(f"Scan with a phone's camera to open {text}" if text else "")
        self.setToolTip(f"Scan with a phone's camera to open {text}" if text else "")
        self.updateGeometry()
        self.update()

    # -- sizing: in modules scaled by the font, so it grows with the desktop's text size ----------

    def _module_pixels(self) -> int:
        return max(4, self.fontMetrics().height() // 3)

    def sizeHint(self) -> QSize:
        side = max(len(self._matrix), 21) * self._module_pixels()
        return QSize(side, side)

    def minimumSizeHint(self) -> QSize:
        side = max(len(self._matrix), 21) * 2  # two device pixels a module still scans
        return QSize(side, side)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self._matrix:
            return
        painter = QPainter(self)
        try:
            count = len(self._matrix)
            side = min(self.width(), self.height())
            # Whole pixels per module keep the edges crisp, which scanners like.
            module = max(1, side // count)
            drawn = module * count
            left = (self.width() - drawn) / 2
            top = (self.height() - drawn) / 2
            painter.fillRect(QRectF(left, top, drawn, drawn), _LIGHT)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_DARK)
            for row_number, row in enumerate(self._matrix):
                for column_number, dark in enumerate(row):
                    if dark:
                        painter.drawRect(
                            QRectF(left + column_number * module, top + row_number * module, module, module)
                        )
        finally:
            painter.end()
