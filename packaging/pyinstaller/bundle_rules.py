"""What goes into the frozen bundle: version, Windows version info, imports, data, and the Qt trim.

The spec (``celeste-desktop.spec``) is executed by PyInstaller and cannot be imported by tests,
so every decision it makes lives here as plain functions over strings and paths. Nothing in
this module imports PyInstaller, Qt or the app.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

APP_NAME = "CelesteOS Desktop"
EXE_NAME = "celeste-desktop"
CLI_EXE_NAME = "celeste-desktop-cli"
BUNDLE_ID = "com.celesteos.desktop"
PUBLISHER = "CelesteOS"
COPYRIGHT = "© CelesteOS"

# Qt plugins the app loads, by plugin folder; ``None`` keeps every plugin of that folder.
# Anything in a folder not listed here is dropped (tls, networkinformation, sqldrivers,
# printsupport, generic, egldeviceintegrations, qmltooling, designer, multimedia, ...).
QT_PLUGINS_KEPT: dict[str, frozenset[str] | None] = {
    # offscreen: CI and the frozen self-test; xcb and wayland: Linux desktops; windows; cocoa.
    "platforms": frozenset({"qoffscreen", "qxcb", "qwayland", "qwayland-generic", "qwayland-egl", "qwindows",
                            "qcocoa", "qdirect2d"}),
    # PNG is built into QtGui; ICO and SVG are what resources/icons holds.
    "imageformats": frozenset({"qico", "qsvg"}),
    "iconengines": frozenset({"qsvgicon"}),
    # Native look: qmodernwindowsstyle / qwindowsvistastyle on Windows, qmacstyle on macOS.
    "styles": None,
    # Portal file dialogs on Linux; the GTK 3 theme would drag the whole GTK stack into the bundle.
    "platformthemes": frozenset({"qxdgdesktopportal"}),
    # Dead keys and input methods; the virtual keyboard needs QtQuick.
    "platforminputcontexts": frozenset({"composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"}),
    # Loaded lazily by xcb only for OpenGL windows; small, and avoids a warning on odd drivers.
    "xcbglintegrations": None,
    "wayland-shell-integration": None,
    "wayland-decoration-client": None,
    "wayland-graphics-integration-client": None,
    # QNetworkInformation's backends (metered-connection detection in gui/metered.py).
    "networkinformation": None,
}

# Qt libraries no kept module or plugin needs; some are pulled in by plugins that are dropped
# afterwards (the virtual keyboard pulls QtQuick and QtQml), so they are removed by name too.
# QtPdf is not needed: the PDF report uses QPdfWriter from QtGui.
QT_LIBRARIES_DROPPED = re.compile(
    r"Qt6?(Quick|Qml|Pdf|WebEngine|WebChannel|WebSockets|WebView|3D|Designer|Lottie|Labs|VirtualKeyboard"
    r"|Multimedia|Charts|DataVisualization|Graphs|Location|Positioning|Sensors|Sql|Test|UiTools|Help"
    r"|ShaderTools|SpatialAudio|TextToSpeech|RemoteObjects|Scxml|StateMachine|Bluetooth|Nfc|SerialPort"
    r"|SerialBus|HttpServer|NetworkAuth|WaylandCompositor|WaylandEgl|CanvasPainter|EglFS|EglFs)",
)
# Software OpenGL and the Direct3D shader compiler: a widgets app paints with the raster engine.
WINDOWS_GL_DROPPED = frozenset({"opengl32sw.dll", "d3dcompiler_47.dll", "libegl.dll", "libglesv2.dll"})

# PySide6 modules left out unless the app imports them (checked by parsing the package), so
# their hooks, plugins and libraries (and QML) stay away.
QT_MODULES_UNLESS_IMPORTED = (
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickControls2", "PySide6.QtQuickWidgets",
    "PySide6.QtQuickTest", "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.QtWebEngineQuick",
    "PySide6.QtWebChannel", "PySide6.QtWebSockets", "PySide6.Qt3DCore", "PySide6.Qt3DRender", "PySide6.Qt3DExtras",
    "PySide6.QtPdf", "PySide6.QtPdfWidgets", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools",
    "PySide6.QtTest", "PySide6.QtSql", "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtMultimedia",
    "PySide6.QtMultimediaWidgets", "PySide6.QtCharts", "PySide6.QtDataVisualization", "PySide6.QtGraphs",
    "PySide6.QtNetwork", "PySide6.QtPrintSupport", "PySide6.QtConcurrent", "PySide6.QtXml", "PySide6.QtSvg",
    "PySide6.QtSvgWidgets", "PySide6.QtStateMachine", "PySide6.QtScxml", "PySide6.QtRemoteObjects",
)

# Never needed at run time: GUI toolkits we do not use, test and build tools, test-only drivers.
# Like every exclusion here, each is dropped from the list if the app imports it.
MODULES_EXCLUDED = (
    "tkinter", "_tkinter", "turtle", "turtledemo", "idlelib", "lib2to3", "pydoc_data", "test",
    "pip", "setuptools", "pkg_resources", "wheel", "distutils",
    "pytest", "_pytest", "pytestqt", "pytest_asyncio", "xdist", "hypothesis", "mypy", "ruff",
    "psycopg", "psycopg_binary", "psycopg2", "MySQLdb", "pysqlite2", "quickxorhash",
    "IPython", "numpy", "PIL", "matplotlib", "tests",
    # httpx's command line (pulls pygments and rich); HTTP/2 is off (net/http.py: http2=False).
    "httpx._main", "pygments", "rich", "click", "h2", "hpack", "hyperframe",
    # SQLAlchemy's hook adds every dialect; the state is SQLite only.
    "sqlalchemy.dialects.mysql", "sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.oracle",
    "sqlalchemy.dialects.mssql",
)

# Installed as dependencies of ``supabase``, which the app does not import (it speaks to Supabase
# Storage and PostgREST with httpx directly).
OPTIONAL_PACKAGES = (
    "supabase", "realtime", "websockets", "postgrest", "storage3", "supabase_auth", "gotrue",
    "supabase_functions", "supafunc", "deprecation", "pydantic", "pydantic_core", "yarl", "multidict",
)


# Distributions whose metadata travels with the bundle: keyring finds its backends through entry
# points, and the diagnostics zip reports these versions (support/diagnostics.py).
METADATA_DISTRIBUTIONS = (
    "keyring", "PySide6-Essentials", "qasync", "msal", "httpx", "cryptography", "SQLAlchemy", "truststore",
)


def read_version(init_file: Path) -> str:
    """``__version__`` from ``celeste_desktop/__init__.py`` without importing the package."""
    tree = ast.parse(init_file.read_text(encoding="utf-8"), filename=str(init_file))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise ValueError(f"{init_file} assigns no __version__ string")


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """Four numbers for Windows (``1.2.3rc1`` → (1, 2, 3, 0)); pre-release tags are dropped."""
    numbers = [int(match) for match in re.findall(r"\d+", version.split("+", maxsplit=1)[0])][:3]
    if not numbers:
        raise ValueError(f"version {version!r} has no number")
    padded = (*numbers, 0, 0, 0, 0)[:4]
    return padded[0], padded[1], padded[2], padded[3]


def windows_version_file(version: str, exe_name: str = EXE_NAME) -> str:
    """The text of a PyInstaller version file (the Windows VERSIONINFO resource) for ``version``."""
    numbers = version_tuple(version)
    dotted = ".".join(str(number) for number in numbers)
    strings = {
        "CompanyName": PUBLISHER,
        "FileDescription": APP_NAME,
        "FileVersion": dotted,
        "InternalName": exe_name,
        "LegalCopyright": COPYRIGHT,
        "OriginalFilename": f"{exe_name}.exe",
        "ProductName": APP_NAME,
        "ProductVersion": version,
    }
    string_structs = ",\n".join(f"          StringStruct({key!r}, {value!r})" for key, value in strings.items())
    return f"""# Generated from celeste_desktop.__version__ by packaging/pyinstaller/bundle_rules.py.
VSVersionInfo(
  ffi=FixedFileInfo(
    filevers={numbers!r},
    prodvers={numbers!r},
    mask=0x3f,
    flags=0x0,
    OS=0x40004,
    fileType=0x1,
    subtype=0x0,
    date=(0, 0)
  ),
  kids=[
    StringFileInfo([
      StringTable(
        '040904B0',
        [
{string_structs}
        ])
    ]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""


def info_plist(version: str) -> dict[str, object]:
    """Info.plist keys for the macOS ``.app`` (PyInstaller fills in the executable and icon keys).

    See packaging/macos/README.md for why each key has its value.
    """
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleShortVersionString": version,
        "CFBundleVersion": ".".join(str(number) for number in version_tuple(version)[:3]),
        "CFBundlePackageType": "APPL",
        "NSHumanReadableCopyright": COPYRIGHT,
        "LSApplicationCategoryType": "public.app-category.productivity",
        # Qt 6.11 wheels are built for macOS 13 and later; keep in step with the PySide6 wheel tag.
        "LSMinimumSystemVersion": "13.0",
        "NSHighResolutionCapable": True,
        "NSRequiresAquaSystemAppearance": False,  # follow the system's dark mode
        "NSPrincipalClass": "NSApplication",
        # A normal app with a Dock icon and a menu bar: the main window is the product, the tray
        # icon is an extra. (LSUIElement true would hide both.)
        "LSUIElement": False,
    }


def imported_modules(package_dir: Path) -> set[str]:
    """Dotted names imported anywhere in ``package_dir``, found by parsing (never importing).

    ``from a.b import c`` counts as both ``a.b`` and ``a.b.c``: ``c`` may be a module.
    """
    names: set[str] = set()
    for source in sorted(package_dir.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def excluded_modules(package_dir: Path) -> list[str]:
    """Every module the bundle leaves out, except those the app imports (or imports from).

    A module the app starts importing later is therefore bundled again without a spec edit.
    """
    imported = imported_modules(package_dir)
    candidates = [*MODULES_EXCLUDED, *OPTIONAL_PACKAGES, *QT_MODULES_UNLESS_IMPORTED]
    return [
        name for name in candidates
        if not any(used == name or used.startswith(name + ".") for used in imported)
    ]


def hidden_imports(platform: str) -> list[str]:
    """Modules loaded by name at run time, which PyInstaller's import scan cannot see.

    ``platform`` is ``sys.platform`` of the build machine (a bundle is built on its own OS).
    """
    modules = [
        # keyring picks its backend through entry points; the hook collects keyring.backends,
        # but the backends' own imports are inside try blocks.
        "keyring.backends.chainer", "keyring.backends.fail", "keyring.backends.null",
        "qasync",
        "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.sqlite.pysqlite", "sqlalchemy.sql.default_comparator",
        "cryptography.fernet", "cryptography.hazmat.primitives.kdf.pbkdf2",
        # The device-code QR and the simulators behind --demo are imported lazily.
        "qrcode", "trustme", "h11", "jwt", "jwt.algorithms",
        "truststore", "certifi", "platformdirs", "filelock",
    ]
    if platform.startswith("win"):
        modules += ["keyring.backends.Windows", "win32ctypes.core", "win32ctypes.pywin32.win32cred",
                    "platformdirs.windows"]
    elif platform == "darwin":
        modules += ["keyring.backends.macOS", "platformdirs.macos"]
    else:
        modules += ["keyring.backends.SecretService", "keyring.backends.libsecret", "keyring.backends.kwallet",
                    "secretstorage", "jeepney", "jeepney.io.blocking", "platformdirs.unix"]
    return modules


def data_files(repo_root: Path) -> list[tuple[str, str]]:
    """``(source, destination folder)`` pairs for PyInstaller's ``datas``.

    The icons go to ``resources/icons`` beside the ``celeste_desktop`` package, the same place
    relative to the package as in a checkout, so one lookup works frozen and unfrozen.
    """
    icons = repo_root / "resources" / "icons"
    pairs = [(str(path), "resources/icons") for path in sorted(icons.glob("celeste*")) if path.is_file()]
    if not pairs:
        raise FileNotFoundError(f"no icons in {icons}: run python packaging/make_icons.py first")
    return pairs


def _posix(dest: str) -> PurePosixPath:
    return PurePosixPath(dest.replace("\\", "/"))


def _plugin_stem(filename: str) -> str:
    stem = filename.split(".", maxsplit=1)[0]
    return stem[3:] if stem.startswith("lib") else stem


def keep_bundle_entry(dest: str) -> bool:
    """Whether one collected file (its path inside the bundle) stays; only Qt files are judged."""
    path = _posix(dest)
    parts = path.parts
    if not parts or parts[0] != "PySide6":
        return True
    name = path.name
    if "translations" in parts[:-1] or name.endswith(".qm"):
        return False  # the app is English only
    if "plugins" in parts[:-1]:
        index = parts.index("plugins")
        if len(parts) < index + 3:
            return True  # a file directly in plugins/: not a plugin
        kept = QT_PLUGINS_KEPT.get(parts[index + 1], frozenset())
        return kept is None or _plugin_stem(name) in kept
    if "qml" in parts[:-1] or "libexec" in parts[:-1]:
        return False
    if name.lower() in WINDOWS_GL_DROPPED:
        return False
    return not QT_LIBRARIES_DROPPED.search(name)


def trimmed(entries: Iterable[tuple[str, str, str]]) -> Iterator[tuple[str, str, str]]:
    """PyInstaller TOC entries ``(dest, source, typecode)`` that ``keep_bundle_entry`` keeps."""
    return (entry for entry in entries if keep_bundle_entry(entry[0]))
