"""The version has one source, celeste_desktop.__version__, and every consumer reads it from there."""

from __future__ import annotations

import re
import tomllib
from types import ModuleType

import pytest
from packaging_helpers import PACKAGING, REPO_ROOT

import celeste_desktop
from celeste_desktop.cli.main import build_parser

VERSION = celeste_desktop.__version__
# PEP 440, the subset we use: 1.2.3, 1.2.3rc1, 1.2.3.dev4, 1.2.3.post1
PEP_440 = re.compile(r"^\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?$")


def test_version_is_a_plain_release_number() -> None:
    assert PEP_440.match(VERSION), VERSION


def test_pyproject_reads_the_version_from_the_package() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "celeste_desktop.__version__"}


def test_command_line_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"CelesteOS Desktop {VERSION}"


def test_bundle_and_installer_read_it_rather_than_repeat_it(bundle_rules: ModuleType) -> None:
    assert bundle_rules.read_version(REPO_ROOT / "celeste_desktop" / "__init__.py") == VERSION
    iss = (PACKAGING / "windows" / "celeste-desktop.iss").read_text(encoding="utf-8")
    assert 'GetStringFileInfo(BundleDir + "\\" + ExeName, "ProductVersion")' in iss
    spec = (PACKAGING / "pyinstaller" / "celeste-desktop.spec").read_text(encoding="utf-8")
    assert 'VERSION = rules.read_version(PACKAGE_DIR / "__init__.py")' in spec


def test_no_packaging_file_hard_codes_a_version() -> None:
    literal = re.compile(r"(?<![\d.])" + re.escape(VERSION) + r"(?![\d.])")
    files = [
        path for path in PACKAGING.rglob("*")
        if path.is_file() and path.suffix not in {".png", ".ico", ".icns", ".pyc"} and "__pycache__" not in path.parts
    ]  # fmt: skip
    files.append(REPO_ROOT / ".ci" / "build-bundle.sh")
    offenders = [
        str(path.relative_to(REPO_ROOT)) for path in files
        if literal.search(path.read_text(encoding="utf-8", errors="replace"))
        and path.suffix != ".md"  # the docs show example file names with a version in them
    ]  # fmt: skip
    assert offenders == []


def test_changelog_keeps_a_changelog_with_nothing_newer_than_the_package() -> None:
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog.startswith("# Changelog\n")
    assert "## [Unreleased]" in changelog
    assert "keepachangelog.com" in changelog
    released = re.findall(r"^## \[(\d+(?:\.\d+)*)\] - \d{4}-\d{2}-\d{2}$", changelog, flags=re.MULTILINE)

    def numbers(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", version)[:3])

    assert all(numbers(version) <= numbers(VERSION) for version in released), released
