"""The build and CI scripts parse, and the installer script keeps the promises the docs make."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from packaging_helpers import PACKAGING, REPO_ROOT

SHELL_SCRIPTS = [PACKAGING / "linux" / "build.sh", REPO_ROOT / ".ci" / "build-bundle.sh"]
ISS = (PACKAGING / "windows" / "celeste-desktop.iss").read_text(encoding="utf-8")


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: path.name)
def test_shell_scripts_parse_and_are_executable(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert script.stat().st_mode & 0o111, f"chmod +x {script}"
    assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: path.name)
def test_shell_scripts_pass_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_ci_script_runs_the_frozen_program() -> None:
    ci = (REPO_ROOT / ".ci" / "build-bundle.sh").read_text(encoding="utf-8")
    assert "packaging/linux/build.sh" in ci
    assert "exe=dist/celeste-desktop/celeste-desktop" in ci
    for needle in ('"$exe" --version', '"$exe" --demo --self-test', "QT_QPA_PLATFORM=offscreen"):
        assert needle in ci


def test_installer_is_per_machine_and_upgrades_in_place() -> None:
    assert "PrivilegesRequired=admin" in ISS
    assert "DefaultDirName={autopf}" in ISS
    assert "AppId={{A62D9A88-1F76-4078-9522-3DD2405B19C4}" in ISS, "changing AppId breaks upgrades"
    assert '"{autoprograms}\\{#AppName}"' in ISS
    assert 'Type: filesandordirs; Name: "{app}\\_internal"' in ISS


def test_installer_never_touches_user_data_unless_asked() -> None:
    data_lines = [line for line in ISS.splitlines() if "localappdata" in line.lower() and not line.startswith(";")]
    assert all("ExpandConstant" in line or line.strip().startswith("//") for line in data_lines), data_lines
    assert "DelTree(UserDataDir()" in ISS
    assert "if (CurUninstallStep = usPostUninstall) and DeleteUserData then" in ISS
    assert "MB_DEFBUTTON2" in ISS, "keeping the data is the default answer"
    assert "/DELETEUSERDATA" in ISS


def test_start_at_login_matches_the_apps_own_switch() -> None:
    from celeste_desktop.gui import autostart

    assert autostart.RUN_KEY in ISS
    assert '/v ""{#AppName}""' in ISS and '#define AppName "CelesteOS Desktop"' in ISS
    assert autostart.APP_NAME == "CelesteOS Desktop"
    assert "--background" in ISS and autostart.BACKGROUND_FLAG == "--background"
    assert "runasoriginaluser" in ISS
