"""Start at login on each platform, written into a temporary HOME (and a fake registry for Windows)."""

from __future__ import annotations

import configparser
import plistlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from celeste_desktop.domain.errors import CelesteError
from celeste_desktop.gui.autostart import (
    BACKGROUND_FLAG,
    _desktop_exec,
    is_start_at_login,
    launch_command,
    set_start_at_login,
)

ODD_PATH = '/opt/Celeste OS/bin/celeste $HOME "quoted" back\\slash 100%'


class FakeRunKey:
    """The HKCU Run key as a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.fail: OSError | None = None

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        if self.fail:
            raise self.fail
        self.values[name] = value

    def delete(self, name: str) -> None:
        if self.fail:
            raise self.fail
        self.values.pop(name, None)


def parse_exec(value: str) -> list[str]:
    """Read an Exec= value back as a desktop environment would (Desktop Entry Specification)."""
    string_escapes = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    text = re.sub(r"\\(.)", lambda match: string_escapes.get(match[1], "\\" + match[1]), value, flags=re.DOTALL)
    arguments = []
    for match in re.finditer(r'"((?:\\[\\"`$]|[^"\\])*)"|([^\s"]+)', text):
        argument = re.sub(r'\\([\\"`$])', r"\1", match[1]) if match[1] is not None else match[2]
        arguments.append(argument.replace("%%", "%"))
    return arguments


def read_desktop_file(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


# -- the command ---------------------------------------------------------------------------------


def test_source_install_starts_the_module_in_the_background(tmp_path: Path) -> None:
    assert launch_command() == [sys.executable, "-m", "celeste_desktop", BACKGROUND_FLAG]
    assert launch_command(tmp_path / "portable") == [
        sys.executable,
        "-m",
        "celeste_desktop",
        "--home",
        str((tmp_path / "portable").resolve()),
        BACKGROUND_FLAG,
    ]


def test_frozen_app_starts_its_own_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert launch_command() == [sys.executable, BACKGROUND_FLAG]
    assert launch_command(tmp_path)[1:] == ["--home", str(tmp_path.resolve()), BACKGROUND_FLAG]


# -- Linux ---------------------------------------------------------------------------------------


def test_linux_writes_and_removes_an_xdg_autostart_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    entry = tmp_path / "config" / "autostart" / "celeste-desktop.desktop"
    assert not is_start_at_login(platform="linux")

    set_start_at_login(True, platform="linux")
    assert entry.is_file()
    assert is_start_at_login(platform="linux")
    fields = read_desktop_file(entry)
    assert fields["Type"] == "Application"
    assert fields["Name"] == "CelesteOS Desktop"
    assert parse_exec(fields["Exec"]) == launch_command()

    set_start_at_login(False, platform="linux")
    assert not entry.exists()
    assert not is_start_at_login(platform="linux")
    set_start_at_login(False, platform="linux")  # turning off twice is fine


def test_linux_exec_survives_spaces_quotes_dollars_and_percents(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    command = [ODD_PATH, "--home", "/srv/yacht docs", BACKGROUND_FLAG]
    set_start_at_login(True, command=command, platform="linux", environ=environ)
    fields = read_desktop_file(tmp_path / "cfg" / "autostart" / "celeste-desktop.desktop")
    assert parse_exec(fields["Exec"]) == command
    assert parse_exec(_desktop_exec(["a\nb"])) == ["a\nb"]


def test_linux_falls_back_to_dot_config(tmp_path: Path) -> None:
    for configured in ("", "relative/ignored"):
        environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": configured}
        set_start_at_login(True, platform="linux", environ=environ)
        assert (tmp_path / ".config" / "autostart" / "celeste-desktop.desktop").is_file()
        set_start_at_login(False, platform="linux", environ=environ)


def test_linux_entry_hidden_by_the_desktop_counts_as_off(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    set_start_at_login(True, platform="linux", environ=environ)
    entry = tmp_path / ".config" / "autostart" / "celeste-desktop.desktop"
    entry.write_text(entry.read_text("utf-8") + "Hidden=true\n", "utf-8")
    assert not is_start_at_login(platform="linux", environ=environ)


def test_two_portable_installs_keep_their_own_entries(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    one, two = tmp_path / "one", tmp_path / "two"
    set_start_at_login(True, home=one, platform="linux", environ=environ)
    set_start_at_login(True, home=two, platform="linux", environ=environ)
    entries = sorted((tmp_path / ".config" / "autostart").glob("*.desktop"))
    assert len(entries) == 2
    commands = [parse_exec(read_desktop_file(entry)["Exec"]) for entry in entries]
    assert sorted(command[command.index("--home") + 1] for command in commands) == [str(one), str(two)]
    set_start_at_login(False, home=one, platform="linux", environ=environ)
    assert not is_start_at_login(home=one, platform="linux", environ=environ)
    assert is_start_at_login(home=two, platform="linux", environ=environ)
    assert not is_start_at_login(platform="linux", environ=environ), "the default install was never turned on"


def test_a_write_failure_is_an_actionable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the config folder should be", "utf-8")
    with pytest.raises(CelesteError) as caught:
        set_start_at_login(True, platform="linux", environ={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(blocker)})
    assert caught.value.title == "Start at login not changed"
    assert "Could not turn on start at login" in caught.value.message and str(blocker) in caught.value.message


# -- macOS ---------------------------------------------------------------------------------------


def test_macos_writes_and_removes_a_launch_agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    agent = tmp_path / "Library" / "LaunchAgents" / "com.celesteos.desktop.plist"
    command = ["/Applications/CelesteOS Desktop.app/Contents/MacOS/CelesteOS Desktop", BACKGROUND_FLAG]

    set_start_at_login(True, command=command, platform="darwin")
    with agent.open("rb") as file:
        plist = plistlib.load(file)
    assert plist["Label"] == "com.celesteos.desktop"
    assert plist["ProgramArguments"] == command
    assert plist["RunAtLoad"] is True
    assert is_start_at_login(platform="darwin")

    set_start_at_login(False, platform="darwin")
    assert not agent.exists()
    assert not is_start_at_login(platform="darwin")


def test_macos_portable_install_has_its_own_label(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    set_start_at_login(True, home=tmp_path / "portable", platform="darwin", environ=environ)
    (agent,) = (tmp_path / "Library" / "LaunchAgents").glob("*.plist")
    with agent.open("rb") as file:
        plist = plistlib.load(file)
    assert plist["Label"].startswith("com.celesteos.desktop.") and agent.stem == plist["Label"]
    assert "--home" in plist["ProgramArguments"]


# -- Windows -------------------------------------------------------------------------------------


def test_windows_uses_the_run_key(tmp_path: Path) -> None:
    registry = FakeRunKey()
    command = [r"C:\Program Files\CelesteOS Desktop\CelesteOS Desktop.exe", BACKGROUND_FLAG]
    assert not is_start_at_login(platform="win32", registry=registry)

    set_start_at_login(True, command=command, platform="win32", registry=registry)
    assert registry.values == {"CelesteOS Desktop": subprocess.list2cmdline(command)}
    assert registry.values["CelesteOS Desktop"].startswith('"C:\\Program Files\\CelesteOS Desktop\\')
    assert is_start_at_login(platform="win32", registry=registry)

    set_start_at_login(True, home=tmp_path, platform="win32", registry=registry)
    assert len(registry.values) == 2, "a portable install gets its own value"
    set_start_at_login(False, platform="win32", registry=registry)
    assert not is_start_at_login(platform="win32", registry=registry)
    assert is_start_at_login(home=tmp_path, platform="win32", registry=registry)


def test_windows_registry_failure_is_an_actionable_error() -> None:
    registry = FakeRunKey()
    registry.fail = PermissionError(5, "Access is denied")
    with pytest.raises(CelesteError) as caught:
        set_start_at_login(False, platform="win32", registry=registry)
    assert "Could not turn off start at login: Access is denied" in caught.value.message
    assert "CurrentVersion\\Run" in caught.value.message
