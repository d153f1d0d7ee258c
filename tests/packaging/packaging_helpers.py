"""Paths and a loader for the packaging scripts, which are files in the repository, not a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGING = REPO_ROOT / "packaging"
SPEC_DIR = PACKAGING / "pyinstaller"
ICON_DIR = REPO_ROOT / "resources" / "icons"


def load_script(path: Path, name: str) -> ModuleType:
    """Import one file by path under ``name`` (once per session)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the Qt hooks import bundle_rules by this name
    spec.loader.exec_module(module)
    return module
