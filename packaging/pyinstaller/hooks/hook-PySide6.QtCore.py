"""PyInstaller's hook for PySide6.QtCore, minus the Qt plugins and files the app does not use."""

from qt_hooks import trimmed_stock_hook

# hiddenimports, binaries, datas (and excludedimports) for PyInstaller to read.
globals().update(trimmed_stock_hook(__file__))
