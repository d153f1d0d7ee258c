"""Start at login: a Run value (Windows), an XDG autostart entry (Linux), a LaunchAgent (macOS).

The command started is the frozen executable, or ``python -m celeste_desktop`` from a source
install, followed by ``--home DIR`` when the app runs from its own folder and by
:data:`BACKGROUND_FLAG`, which opens the app minimised to the tray. Each ``--home`` gets its
own entry (a hash of the folder in its name), so two portable installs do not overwrite each
other. Nothing here needs Qt; it lives in ``gui`` because only the window offers the switch.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from celeste_desktop.domain.errors import CelesteError

BACKGROUND_FLAG = "--background"
APP_NAME = "CelesteOS Desktop"
LAUNCH_AGENT_LABEL = "com.celesteos.desktop"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


class RunKey(Protocol):
    """The HKCU ``...\\CurrentVersion\\Run`` key; tests inject a dict-backed fake."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


def _home_suffix(home: str | Path | None) -> str:
    if home is None:
        return ""
    folder = os.path.normcase(str(Path(home).expanduser().resolve()))
    return hashlib.sha256(folder.encode()).hexdigest()[:8]


def launch_command(home: str | Path | None = None) -> list[str]:
    """The command line that starts this installation in the background."""
    if getattr(sys, "frozen", False):
        command = [sys.executable]
    else:
        python = Path(sys.executable)
        # pythonw.exe opens no console window at login.
        windowless = python.with_name("pythonw.exe")
        interpreter = windowless if sys.platform == "win32" and windowless.is_file() else python
        command = [str(interpreter), "-m", "celeste_desktop"]
    if home is not None:
        command += ["--home", str(Path(home).expanduser().resolve())]
    return [*command, BACKGROUND_FLAG]


def set_start_at_login(
    enabled: bool,
    *,
    command: list[str] | None = None,
    home: str | Path | None = None,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    registry: RunKey | None = None,
) -> None:
    """Register (or remove) the login entry for this installation.

    ``home`` is the ``--home`` folder in use, if any: it goes on the command line and into the
    entry's name. ``platform``, ``environ`` and ``registry`` default to the real ones (tests).
    """
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    argv = command if command is not None else launch_command(home)
    suffix = _home_suffix(home)
    if platform == "win32":
        key = registry if registry is not None else _winreg_run_key()
        name = _run_value_name(suffix)
        try:
            if enabled:
                key.set(name, subprocess.list2cmdline(argv))
            else:
                key.delete(name)
        except OSError as exc:
            raise _not_changed(enabled, f"the registry key HKCU\\{RUN_KEY}", exc) from exc
        return
    path = _entry_path(platform, environ, suffix)
    try:
        _write_entry(enabled, path, argv, platform, suffix)
    except OSError as exc:
        raise _not_changed(enabled, str(path), exc) from exc


def _not_changed(enabled: bool, where: str, exc: OSError) -> CelesteError:
    action = "turn on" if enabled else "turn off"
    return CelesteError(
        f"Could not {action} start at login: {exc.strerror or exc}. Check that your account can change "
        f"{where}, or ask your IT contact.",
        title="Start at login not changed",
    )


def _write_entry(enabled: bool, path: Path, argv: Sequence[str], platform: str, suffix: str) -> None:
    if not enabled:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if platform == "darwin":
        payload = plistlib.dumps(_launch_agent(argv, suffix))
    else:
        payload = _desktop_entry(argv).encode("utf-8")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(payload)
    temporary.replace(path)  # never leave a half-written entry for the session manager to parse


def is_start_at_login(
    *,
    home: str | Path | None = None,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    registry: RunKey | None = None,
) -> bool:
    """Whether this installation's login entry exists (and is not hidden)."""
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    suffix = _home_suffix(home)
    if platform == "win32":
        key = registry if registry is not None else _winreg_run_key()
        return key.get(_run_value_name(suffix)) is not None
    path = _entry_path(platform, environ, suffix)
    if not path.is_file():
        return False
    if platform == "darwin":
        return True
    lines = {line.strip().replace(" ", "").lower() for line in path.read_text("utf-8", errors="replace").splitlines()}
    return "hidden=true" not in lines and "x-gnome-autostart-enabled=false" not in lines


# -- platform details ------------------------------------------------------------------------


def _run_value_name(suffix: str) -> str:
    return f"{APP_NAME} ({suffix})" if suffix else APP_NAME


def _entry_path(platform: str, environ: Mapping[str, str], suffix: str) -> Path:
    home = Path(environ.get("HOME") or Path.home())
    if platform == "darwin":
        label = f"{LAUNCH_AGENT_LABEL}.{suffix}" if suffix else LAUNCH_AGENT_LABEL
        return home / "Library" / "LaunchAgents" / f"{label}.plist"
    configured = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    config = Path(configured) if configured and Path(configured).is_absolute() else home / ".config"
    stem = f"celeste-desktop-{suffix}" if suffix else "celeste-desktop"
    return config / "autostart" / f"{stem}.desktop"


def _launch_agent(argv: Sequence[str], suffix: str) -> dict[str, object]:
    return {
        "Label": f"{LAUNCH_AGENT_LABEL}.{suffix}" if suffix else LAUNCH_AGENT_LABEL,
        "ProgramArguments": list(argv),
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",  # only graphical log-ins, not ssh sessions
    }


def _desktop_exec(argv: Sequence[str]) -> str:
    """Quote ``argv`` for an ``Exec=`` key (Desktop Entry Specification, "The Exec key")."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    quoted: list[str] = []
    for argument in argv:
        if argument and not (set(argument) & reserved):
            word = argument
        else:
            inner = "".join("\\" + char if char in '"`$\\' else char for char in argument)
            word = f'"{inner}"'
        quoted.append(word.replace("%", "%%"))
    # The string-value escape rule applies on top of the quoting: every backslash is doubled.
    return " ".join(quoted).replace("\\", "\\\\").replace("\n", "\\n")


def _desktop_entry(argv: Sequence[str]) -> str:
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            f"Name={APP_NAME}",
            "Comment=Copy the yacht's OneDrive documents to CelesteOS",
            f"Exec={_desktop_exec(argv)}",
            "Icon=celeste-desktop",
            "Terminal=false",
            "X-GNOME-Autostart-enabled=true",
            "",
        ]
    )


class _WinregRunKey:
    """The real HKCU Run key (Windows only)."""

    def get(self, name: str) -> str | None:
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                    value, _kind = winreg.QueryValueEx(key, name)
            except FileNotFoundError:
                return None
            return str(value)
        return None

    def set(self, name: str, value: str) -> None:
        if sys.platform == "win32":
            import winreg

            with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> None:
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                    winreg.DeleteValue(key, name)
            except FileNotFoundError:
                pass


def _winreg_run_key() -> RunKey:
    if sys.platform != "win32":
        raise RuntimeError("the Windows Run key exists only on Windows")
    return _WinregRunKey()
