"""Run PyInstaller's own hook for a PySide6 module, then drop the Qt files the app does not use.

Trimming inside the hook (rather than only after ``Analysis``) matters: PyInstaller resolves
the shared libraries of every collected plugin, so a plugin dropped afterwards would still
leave its dependencies behind (the GTK 3 theme alone pulls cairo, pango, atk and gdk-pixbuf).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from bundle_rules import keep_bundle_entry

# The module-level names a stock Qt hook defines for PyInstaller.
_KNOWN_HOOK_NAMES = frozenset({"hiddenimports", "binaries", "datas", "excludedimports"})


def _keep(pair: tuple[str, str]) -> bool:
    source, dest_dir = pair
    return keep_bundle_entry(f"{dest_dir}/{os.path.basename(source)}")


def trimmed_stock_hook(hook_file: str) -> dict[str, Any]:
    """The names the stock hook of the same file name defines, with its files filtered."""
    pyinstaller = importlib.util.find_spec("PyInstaller")
    if pyinstaller is None or pyinstaller.origin is None:
        raise RuntimeError("qt_hooks.py runs inside a PyInstaller build; PyInstaller is not installed")
    stock = Path(pyinstaller.origin).parent / "hooks" / Path(hook_file).name
    # The stock Qt hooks derive the module name from their own file name, so run them as themselves.
    namespace: dict[str, Any] = {"__file__": str(stock), "__name__": f"stock_{stock.stem}"}
    exec(compile(stock.read_text(encoding="utf-8"), str(stock), "exec"), namespace)  # noqa: S102 - PyInstaller's own hook
    if any(name in namespace for name in ("hook", "pre_find_module_path", "pre_safe_import_module")):
        raise RuntimeError(f"{stock} defines a hook function; teach qt_hooks.py to pass it through")
    result: dict[str, Any] = {name: namespace[name] for name in _KNOWN_HOOK_NAMES if name in namespace}
    result["binaries"] = [pair for pair in result.get("binaries", []) if _keep(pair)]
    result["datas"] = [pair for pair in result.get("datas", []) if _keep(pair)]
    return result
