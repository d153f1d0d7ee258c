"""``celeste-desktop config get|set|list|import``: set up a PC without the GUI.

Secrets (``supabase_key``, ``digest_salt``) go to the vault, never to the settings file or the
terminal: ``config set supabase_key -`` reads the value from standard input, and ``config get``
only says whether one is set.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Protocol, TextIO

from celeste_desktop.config.settings import (
    INFORMATIONAL_KEYS,
    SECRET_SETTINGS,
    SPECS,
    Settings,
    load_settings,
    parse_value,
    save_settings,
    to_json_value,
)
from celeste_desktop.domain.errors import ConfigError


class SecretStore(Protocol):
    """What the config commands need of the vault."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...


@dataclasses.dataclass
class ImportResult:
    applied: list[str]
    secrets: list[str]
    unknown: list[str]
    informational: list[str]


def config_get(settings_file: Path, name: str, secrets: SecretStore | None, out: TextIO) -> int:
    if name in SECRET_SETTINGS:
        present = secrets is not None and bool(secrets.get(name))
        out.write(f"{name} is {'set (stored in the vault)' if present else 'not set'}\n")
        return 0
    if name not in SPECS:
        raise ConfigError(name, f"there is no setting called {name!r}; run `celeste-desktop config list` to see them")
    value = getattr(load_settings(settings_file), name)
    out.write(f"{_show(to_json_value(value))}\n")
    return 0


def config_set(
    settings_file: Path, name: str, raw: str, secrets: SecretStore | None, stdin: TextIO, out: TextIO
) -> int:
    if name in SECRET_SETTINGS:
        if raw != "-":
            raise ConfigError(
                name,
                "is a secret: pass '-' and give it on standard input, "
                f"e.g. `celeste-desktop config set {name} - < key.txt`, "
                "so it never shows in shell history or process lists",
            )
        value = stdin.readline().strip()
        if not value:
            raise ConfigError(name, "nothing was read from standard input")
        if secrets is None:
            raise ConfigError(name, "the vault is not available")
        secrets.set(name, value)
        out.write(f"{name} stored in the vault\n")
        return 0
    settings = load_settings(settings_file)
    value = parse_value(name, raw)
    save_settings(settings_file, settings.replace(**{name: value}))
    out.write(f"{name} = {_show(to_json_value(value))}\n")
    return 0


def config_list(settings_file: Path, secrets: SecretStore | None, out: TextIO) -> int:
    settings = load_settings(settings_file)
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        value = getattr(settings, field.name)
        marker = " " if value == getattr(defaults, field.name) else "*"
        out.write(f"{marker} {field.name} = {_show(to_json_value(value))}\n      {SPECS[field.name].help}\n")
    for name in SECRET_SETTINGS:
        present = secrets is not None and bool(secrets.get(name))
        out.write(f"  {name} = {'(set, in the vault)' if present else '(not set)'}\n")
    out.write("(* differs from the default)\n")
    return 0


def import_provisioning(settings_file: Path, data: Any, secrets: SecretStore | None) -> ImportResult:
    """Apply a provisioning object: settings to the file, secrets to the vault, all or nothing."""
    if not isinstance(data, dict):
        raise ConfigError("provisioning file", "must hold one JSON object of setting names and values")
    settings = load_settings(settings_file)
    changes: dict[str, Any] = {}
    secret_values: dict[str, str] = {}
    unknown: list[str] = []
    informational: list[str] = []
    for name, value in data.items():
        if name in SECRET_SETTINGS:
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(name, "must be a non-empty string")
            secret_values[name] = value.strip()
        elif name in SPECS:
            changes[name] = parse_value(name, value)
        elif name in INFORMATIONAL_KEYS:
            informational.append(name)
        else:
            unknown.append(name)
    if secret_values and secrets is None:
        raise ConfigError(next(iter(secret_values)), "the vault is not available")
    if ("authority" in changes or "graph_url" in changes) and "cloud" not in changes:
        changes["cloud"] = "custom"
    for name, value in secret_values.items():
        assert secrets is not None
        secrets.set(name, value)
    save_settings(settings_file, settings.replace(**changes))
    return ImportResult(sorted(changes), sorted(secret_values), sorted(unknown), sorted(informational))


def config_import(settings_file: Path, source: str, secrets: SecretStore | None, stdin: TextIO, out: TextIO) -> int:
    text = stdin.read() if source == "-" else _read(source)
    # The simulators print their settings as the first line of their output; accept that too.
    first = text.strip().splitlines()[0] if text.strip() else ""
    try:
        data = json.loads(text) if text.strip().startswith("{") and not _is_jsonl(text) else json.loads(first)
    except json.JSONDecodeError as exc:
        raise ConfigError("provisioning file", f"{source} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    result = import_provisioning(settings_file, data, secrets)
    for name in result.applied:
        out.write(f"set {name}\n")
    for name in result.secrets:
        out.write(f"stored {name} in the vault\n")
    for name in result.informational:
        out.write(f"ignored {name}: {INFORMATIONAL_KEYS[name]}\n")
    for name in result.unknown:
        out.write(f"UNKNOWN key {name!r}: not a setting of this version; check the spelling or the provisioning file\n")
    return 1 if result.unknown else 0


def _is_jsonl(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return True
    return False


def _read(source: str) -> str:
    try:
        return Path(source).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError("provisioning file", f"cannot read {source}: {exc.strerror}") from None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value)


def stdin_stream() -> TextIO:
    return sys.stdin
