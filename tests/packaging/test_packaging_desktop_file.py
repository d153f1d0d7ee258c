"""The Linux .desktop file: valid, and naming the executable and icon the tarball installs."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from types import ModuleType

import pytest
from packaging_helpers import PACKAGING

DESKTOP_FILE = PACKAGING / "linux" / "celeste-desktop.desktop"


def read_entry() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(DESKTOP_FILE.read_text(encoding="utf-8"))
    return parser


def test_desktop_file_passes_desktop_file_validate() -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    result = subprocess.run([validator, str(DESKTOP_FILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", f"hints or warnings: {result.stdout}"


def test_desktop_entry_starts_the_bundle_by_name(bundle_rules: ModuleType) -> None:
    entry = read_entry()["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] == bundle_rules.APP_NAME
    assert entry["Exec"].split()[0] == bundle_rules.EXE_NAME
    assert entry["TryExec"] == bundle_rules.EXE_NAME
    assert entry["StartupWMClass"] == bundle_rules.EXE_NAME, "Qt names the window class after the executable"
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")
    assert "%" not in entry["Exec"], "the app opens no files, so no field codes"


def test_icon_name_matches_the_tarball_and_the_autostart_entry() -> None:
    entry = read_entry()["Desktop Entry"]
    assert entry["Icon"] == "celeste-desktop"
    build_script = (PACKAGING / "linux" / "build.sh").read_text(encoding="utf-8")
    assert "apps/celeste-desktop.png" in build_script
    assert "apps/celeste-desktop.svg" in build_script
    from celeste_desktop.gui import autostart

    assert "Icon=celeste-desktop" in autostart._desktop_entry(["celeste-desktop", "--background"])


def test_demo_action_is_declared_and_defined() -> None:
    entry = read_entry()
    actions = [name for name in entry["Desktop Entry"]["Actions"].split(";") if name]
    for action in actions:
        section = entry[f"Desktop Action {action}"]
        assert section["Name"]
        assert section["Exec"].startswith("celeste-desktop ")
