"""What the PyInstaller spec collects and trims (packaging/pyinstaller/bundle_rules.py, qt_hooks.py)."""

from __future__ import annotations

import ast
import importlib.util
import plistlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging_helpers import SPEC_DIR, load_script

import celeste_desktop

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "celeste_desktop"

KEPT = [
    "PySide6/Qt/plugins/platforms/libqxcb.so",
    "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/Qt/plugins/platforms/libqwayland.so",
    "PySide6/plugins/platforms/qwindows.dll",
    "PySide6/Qt/plugins/platforms/libqcocoa.dylib",
    "PySide6/plugins/styles/qmodernwindowsstyle.dll",
    "PySide6/Qt/plugins/imageformats/libqico.so",
    "PySide6/Qt/plugins/imageformats/libqsvg.so",
    "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
    "PySide6/Qt/plugins/networkinformation/libqnetworkmanager.so",
    "PySide6/plugins/networkinformation/qnetworklistmanager.dll",
    "PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so",
    "PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
    "PySide6/Qt/lib/libQt6Core.so.6",
    "PySide6/Qt/lib/libQt6Gui.so.6",
    "PySide6/Qt/lib/libQt6Widgets.so.6",
    "PySide6/Qt/lib/libQt6Network.so.6",
    "PySide6/Qt/lib/libQt6Svg.so.6",
    "PySide6/Qt/lib/libicudata.so.73",
    "PySide6/Qt6Core.dll",
    "PySide6/Qt/lib/QtGui.framework/Versions/A/QtGui",
    "PySide6/QtCore.abi3.so",
    "libpython3.11.so.1.0",
    "certifi/cacert.pem",
    "resources/icons/celeste-32.png",
]
DROPPED = [
    "PySide6/Qt/translations/qtbase_de.qm",
    "PySide6/translations/qt_fr.qm",
    "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so",
    "PySide6/Qt/plugins/imageformats/libqjpeg.so",
    "PySide6/Qt/plugins/imageformats/libqpdf.so",
    "PySide6/Qt/plugins/tls/libqopensslbackend.so",
    "PySide6/Qt/plugins/sqldrivers/libqsqlite.so",
    "PySide6/Qt/plugins/printsupport/libcupsprintersupport.so",
    "PySide6/Qt/plugins/egldeviceintegrations/libqeglfs-kms-integration.so",
    "PySide6/Qt/plugins/generic/libqevdevmouseplugin.so",
    "PySide6/Qt/lib/libQt6Quick.so.6",
    "PySide6/Qt/lib/libQt6Qml.so.6",
    "PySide6/Qt/lib/libQt6Pdf.so.6",
    "PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6",
    "PySide6/Qt6WebEngineCore.dll",
    "PySide6/Qt63DRender.dll",
    "PySide6/opengl32sw.dll",
    "PySide6/d3dcompiler_47.dll",
    "PySide6/Qt/lib/QtQuick.framework/Versions/A/QtQuick",
    "PySide6/Qt/qml/QtQuick/Controls/qmldir",
]


@pytest.mark.parametrize("dest", KEPT)
def test_files_the_app_uses_stay(bundle_rules: ModuleType, dest: str) -> None:
    assert bundle_rules.keep_bundle_entry(dest)
    assert bundle_rules.keep_bundle_entry(dest.replace("/", "\\")), "Windows separators too"


@pytest.mark.parametrize("dest", DROPPED)
def test_qt_parts_the_app_does_not_use_go(bundle_rules: ModuleType, dest: str) -> None:
    assert not bundle_rules.keep_bundle_entry(dest)


def test_trimmed_filters_toc_entries(bundle_rules: ModuleType) -> None:
    toc = [(dest, f"/src/{dest}", "BINARY") for dest in (KEPT[0], DROPPED[0], KEPT[-1])]
    assert [entry[0] for entry in bundle_rules.trimmed(toc)] == [KEPT[0], KEPT[-1]]


def test_version_is_read_without_importing(bundle_rules: ModuleType, tmp_path: Path) -> None:
    assert bundle_rules.read_version(PACKAGE_DIR / "__init__.py") == celeste_desktop.__version__
    (tmp_path / "__init__.py").write_text('"""x"""\nname = "y"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="no __version__"):
        bundle_rules.read_version(tmp_path / "__init__.py")


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1.0", (0, 1, 0, 0)), ("1.2", (1, 2, 0, 0)), ("2.3.4rc1", (2, 3, 4, 0)), ("1.0.0+local.7", (1, 0, 0, 0))],
)
def test_windows_needs_four_numbers(bundle_rules: ModuleType, version: str, expected: tuple[int, ...]) -> None:
    assert bundle_rules.version_tuple(version) == expected


def test_windows_version_resource_text(bundle_rules: ModuleType) -> None:
    text = bundle_rules.windows_version_file("1.4.2rc1")
    call = ast.parse(text, mode="exec").body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    assert isinstance(call.value.func, ast.Name) and call.value.func.id == "VSVersionInfo"
    assert "filevers=(1, 4, 2, 0)" in text
    assert "StringStruct('ProductVersion', '1.4.2rc1')" in text
    assert "StringStruct('OriginalFilename', 'celeste-desktop.exe')" in text
    cli = bundle_rules.windows_version_file("1.4.2", bundle_rules.CLI_EXE_NAME)
    assert "StringStruct('OriginalFilename', 'celeste-desktop-cli.exe')" in cli


def test_windows_version_resource_loads_in_pyinstaller(
    bundle_rules: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyInstaller's own loader reads the file and encodes the resource (pefile/win32api stubbed off Windows)."""
    compat = pytest.importorskip("PyInstaller.compat")
    if "pefile" not in sys.modules and importlib.util.find_spec("pefile") is None:
        monkeypatch.setitem(sys.modules, "pefile", ModuleType("pefile"))
    if not hasattr(compat, "win32api"):
        monkeypatch.setattr(compat, "win32api", ModuleType("win32api"), raising=False)
    monkeypatch.delitem(sys.modules, "PyInstaller.utils.win32.versioninfo", raising=False)
    versioninfo = importlib.import_module("PyInstaller.utils.win32.versioninfo")
    monkeypatch.delitem(sys.modules, "PyInstaller.utils.win32.versioninfo")  # do not leave the stubbed copy

    path = tmp_path / "version_info.txt"
    path.write_text(bundle_rules.windows_version_file("1.4.2rc1"), encoding="utf-8")
    info = versioninfo.load_version_info_from_text_file(str(path))
    assert info.ffi.fileVersionMS == (1 << 16) | 4
    raw = info.toRaw()
    assert "1.4.2rc1".encode("utf-16-le") in raw
    assert "CelesteOS Desktop".encode("utf-16-le") in raw


def test_info_plist_carries_the_version(bundle_rules: ModuleType) -> None:
    keys = bundle_rules.info_plist("1.4.2")
    assert keys["CFBundleShortVersionString"] == "1.4.2"
    assert keys["CFBundleVersion"] == "1.4.2"
    assert keys["CFBundleIdentifier"] == "com.celesteos.desktop"
    assert keys["NSHighResolutionCapable"] is True
    assert keys["LSUIElement"] is False
    plistlib.loads(plistlib.dumps(keys))  # serialisable as PyInstaller will write it


def test_nothing_the_app_imports_is_excluded(bundle_rules: ModuleType) -> None:
    imported = bundle_rules.imported_modules(PACKAGE_DIR)
    excluded = set(bundle_rules.excluded_modules(PACKAGE_DIR))
    clashes = {name for name in imported if any(name == ex or name.startswith(ex + ".") for ex in excluded)}
    assert clashes == set()
    assert {"tkinter", "pytest", "PySide6.QtQml", "PySide6.QtWebEngineCore"} <= excluded
    assert "PySide6.QtNetwork" not in excluded, "gui/single_instance.py and gui/metered.py use it"


def test_supabase_packages_are_excluded_only_while_unused(bundle_rules: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / "fake_app"
    package.mkdir()
    (package / "a.py").write_text("import httpx\nfrom PySide6.QtWidgets import QWidget\n", encoding="utf-8")
    excluded = bundle_rules.excluded_modules(package)
    assert {"supabase", "realtime", "websockets", "PySide6.QtNetwork"} <= set(excluded)

    (package / "b.py").write_text("from supabase import create_client\nimport PySide6.QtNetwork\n", encoding="utf-8")
    excluded = bundle_rules.excluded_modules(package)
    assert "supabase" not in excluded
    assert "PySide6.QtNetwork" not in excluded
    assert "websockets" in excluded, "only what is imported comes back"


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin"])
def test_hidden_imports_name_the_platform_keyring_backend(bundle_rules: ModuleType, platform: str) -> None:
    modules = bundle_rules.hidden_imports(platform)
    backend = {"linux": "keyring.backends.SecretService", "win32": "keyring.backends.Windows",
               "darwin": "keyring.backends.macOS"}[platform]  # fmt: skip
    assert backend in modules
    assert {"qasync", "sqlalchemy.dialects.sqlite", "trustme", "h11", "jwt", "certifi", "truststore"} <= set(modules)


def test_hidden_imports_of_this_platform_exist(bundle_rules: ModuleType) -> None:
    missing = [name for name in bundle_rules.hidden_imports(sys.platform) if importlib.util.find_spec(name) is None]
    assert missing == []


def test_data_files_are_the_icons_beside_the_package(bundle_rules: ModuleType, tmp_path: Path) -> None:
    pairs = bundle_rules.data_files(REPO_ROOT)
    names = {Path(source).name for source, _ in pairs}
    assert {"celeste-16.png", "celeste-256.png", "celeste.ico", "celeste.icns", "celeste.svg"} <= names
    assert {dest for _, dest in pairs} == {"resources/icons"}
    with pytest.raises(FileNotFoundError, match="make_icons"):
        bundle_rules.data_files(tmp_path)


def test_metadata_travels_for_every_distribution_diagnostics_reports(bundle_rules: ModuleType) -> None:
    from importlib.metadata import version

    for distribution in bundle_rules.METADATA_DISTRIBUTIONS:
        assert version(distribution)


def test_the_spec_uses_the_rules_and_the_trimmed_hooks() -> None:
    spec = (SPEC_DIR / "celeste-desktop.spec").read_text(encoding="utf-8")
    compile(spec, "celeste-desktop.spec", "exec")
    needles = (
        "rules.trimmed(a.binaries)", "rules.excluded_modules(", "rules.hidden_imports(sys.platform)",
        'hookspath=[str(SPEC_DIR / "hooks")]', "console=False", "rules.windows_version_file(VERSION, exe_name)",
        "rules.info_plist(VERSION)", "upx=False",
    )  # fmt: skip
    for needle in needles:
        assert needle in spec, needle


def test_each_qt_hook_overrides_a_stock_pyinstaller_hook() -> None:
    pyinstaller = pytest.importorskip("PyInstaller")
    stock = Path(pyinstaller.__file__).parent / "hooks"
    hooks = sorted((SPEC_DIR / "hooks").glob("hook-*.py"))
    assert {hook.name for hook in hooks} >= {"hook-PySide6.py", "hook-PySide6.QtGui.py", "hook-PySide6.QtWidgets.py"}
    for hook in hooks:
        assert (stock / hook.name).is_file(), f"{hook.name} overrides nothing"


def test_trimmed_qtgui_hook_keeps_the_platforms_and_drops_the_rest() -> None:
    pytest.importorskip("PyInstaller")
    if str(SPEC_DIR) not in sys.path:
        sys.path.insert(0, str(SPEC_DIR))  # as the spec does, so the hook finds bundle_rules
    qt_hooks = load_script(SPEC_DIR / "qt_hooks.py", "qt_hooks")
    result = qt_hooks.trimmed_stock_hook(str(SPEC_DIR / "hooks" / "hook-PySide6.QtGui.py"))
    files = {f"{dest}/{Path(source).name}" for source, dest in result["binaries"]}
    names = {Path(name).name for name in files}
    assert any(name.startswith(("libqoffscreen", "qoffscreen")) for name in names)
    assert not any("gtk3" in name or "eglfs" in name or "vnc" in name for name in names)
    assert all("translations" not in name for name in files)
