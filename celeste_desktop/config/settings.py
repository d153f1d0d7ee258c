"""Typed settings in one JSON file, with validation messages that name the setting and the fix.

Secrets never live here: the Supabase yacht key and the digest salt go to the vault. Every
remote endpoint is a setting, so the same code reaches the global, US Government and China
clouds, a company proxy, or the simulators.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celeste_desktop.domain.errors import ConfigError

# Secrets accepted by `config set` / `config import`; they go to the vault, never to this file.
SECRET_SETTINGS = ("supabase_key", "digest_salt")


@dataclass(frozen=True)
class CloudPreset:
    name: str
    authority: str
    graph_url: str
    label: str


CLOUD_PRESETS: dict[str, CloudPreset] = {
    "global": CloudPreset(
        "global", "https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0", "Microsoft 365 (global)"
    ),
    "usgov": CloudPreset(
        "usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us/v1.0", "US Government (GCC High / DoD)"
    ),
    "china": CloudPreset(
        "china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0", "China (21Vianet)"
    ),
}

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kbit": 125,
    "mbit": 125_000,
    "gbit": 125_000_000,
}
_RATE = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]*)\s*(?:/\s*s)?\s*$", re.IGNORECASE)
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_rate(text: str) -> int:
    """``"2mbit"`` → 250000 bytes/s; ``"512KiB/s"`` → 524288; ``"0"`` or ``""`` → 0 (no cap)."""
    if not text.strip():
        return 0
    match = _RATE.match(text)
    unit = match.group("unit").lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError("use a number with a unit, like 2mbit, 512kbit, 200KB/s or 0 for no limit")
    return int(float(match.group("num")) * _UNITS[unit])


@dataclass(frozen=True)
class Settings:
    """All settings with their defaults. Field docs are shown by ``config list``."""

    yacht_id: str = ""
    cloud: str = "global"
    authority: str = ""
    tenant: str = "organizations"
    client_id: str = ""
    graph_url: str = ""
    supabase_url: str = ""
    supabase_anon_key: str = ""
    bucket: str = "documents"
    ca_bundle: str = ""
    use_system_trust: bool = True
    proxy: str = ""
    digest_url: str = ""
    pipeline_mode: str = "register"
    delete_objects_on_remove: bool = False
    include_sharepoint: bool = True
    vault_backend: str = "auto"
    log_level: str = "INFO"
    upload_limit: str = "0"
    download_limit: str = "0"
    concurrency_small: int = 4
    concurrency_large: int = 2
    schedule: tuple[str, ...] = ()
    sync_interval_minutes: int = 60
    pause_on_metered: bool = True
    max_file_size_mb: int = 5000
    max_attempts: int = 10
    budget_monthly_mb: int = 0
    budget_daily_mb: int = 0
    budget_reset_day: int = 1
    start_at_login: bool = False
    metadata_rules: Mapping[str, Any] = field(default_factory=dict)
    skip_patterns: Mapping[str, Any] = field(default_factory=dict)

    # -- derived values ----------------------------------------------------------------------

    @property
    def preset(self) -> CloudPreset | None:
        return CLOUD_PRESETS.get(self.cloud)

    @property
    def effective_authority(self) -> str:
        return (self.authority or (self.preset.authority if self.preset else "")).rstrip("/")

    @property
    def effective_graph_url(self) -> str:
        return (self.graph_url or (self.preset.graph_url if self.preset else "")).rstrip("/")

    @property
    def authority_url(self) -> str:
        """The MSAL authority: host plus tenant, e.g. https://login.microsoftonline.com/organizations."""
        return f"{self.effective_authority}/{self.tenant}"

    @property
    def upload_limit_bytes(self) -> int:
        return parse_rate(self.upload_limit)

    @property
    def download_limit_bytes(self) -> int:
        return parse_rate(self.download_limit)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SettingSpec:
    name: str
    help: str
    parse: Callable[[Any], Any]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value.strip()


def _uuid(example: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value)
        if not text:
            return ""
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise ValueError(f"must be a UUID like {example}") from None

    return parse


def _url(*, https_only: bool = False, allow_empty: bool = True) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).rstrip("/")
        if not text and allow_empty:
            return ""
        parts = urllib.parse.urlsplit(text)
        schemes = ("https",) if https_only else ("http", "https")
        if parts.scheme not in schemes or not parts.netloc:
            need = "an https:// URL" if https_only else "an http:// or https:// URL"
            raise ValueError(f"must be {need}, like https://example.com")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query string or fragment")
        return text

    return parse


def _choice(*choices: str, lower: bool = True) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value)
        text = text.lower() if lower else text.upper()
        if text not in choices:
            raise ValueError(f"must be one of: {', '.join(choices)}")
        return text

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _int(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"must be from {low} to {high}")
        return number

    return parse


def _rate(value: Any) -> str:
    text = _text(str(value))
    parse_rate(text)
    return text or "0"


def _path(value: Any) -> str:
    text = _text(value)
    if text and not Path(text).expanduser().is_file():
        raise ValueError(f"file {text} does not exist; give the path of a PEM file, or an empty value")
    return str(Path(text).expanduser()) if text else ""


def _proxy(value: Any) -> str:
    text = _text(value)
    if not text:
        return ""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
        raise ValueError("must look like http://proxy.example:3128 (or empty for a direct connection)")
    return text


def _schedule(value: Any) -> tuple[str, ...]:
    items: Iterable[Any]
    if isinstance(value, str):
        items = [part for part in re.split(r"[,\s]+", value) if part]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError("must be a list of windows like 22:00-06:00")
    windows = []
    for item in items:
        if not isinstance(item, str) or not _WINDOW.match(item.strip()):
            raise ValueError(f"{item!r} is not a window like 22:00-06:00 (24-hour local time)")
        windows.append(item.strip())
    return tuple(windows)


def _bucket(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{1,62}", text):
        raise ValueError("must be a bucket name like documents (lower-case letters, digits, - _ .)")
    return text


def _tenant(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,255}", text):
        raise ValueError("must be a tenant id (a UUID), a domain like contoso.onmicrosoft.com, or organizations")
    return text


def _mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object like {"doc_types": {"manuals": "manual"}}')
    return value


def _metadata_rules(value: Any) -> Mapping[str, Any]:
    from celeste_desktop.domain.metadata import MetadataRules

    mapping = _mapping(value)
    try:
        MetadataRules.from_overrides(mapping)
    except ConfigError as exc:
        raise ValueError(exc.message.removeprefix("metadata_rules: ")) from None
    return mapping


def _skip_patterns(value: Any) -> Mapping[str, Any]:
    from celeste_desktop.domain.rules import SkipPatterns

    mapping = _mapping(value)
    try:
        SkipPatterns.from_overrides(mapping)
    except ConfigError as exc:
        raise ValueError(exc.message.removeprefix("skip_patterns: ")) from None
    return mapping


SPECS: dict[str, SettingSpec] = {
    spec.name: spec
    for spec in (
        SettingSpec("yacht_id", "The yacht's id in the fleet (a UUID).", _uuid("3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f")),
        SettingSpec(
            "cloud",
            "Microsoft cloud preset: global, usgov, china or custom.",
            _choice("global", "usgov", "china", "custom"),
        ),
        SettingSpec(
            "authority",
            "Sign-in host, e.g. https://login.microsoftonline.com (empty: from the cloud preset).",
            _url(https_only=True),
        ),
        SettingSpec("tenant", "Microsoft 365 tenant id or domain, or organizations.", _tenant),
        SettingSpec(
            "client_id",
            "Application (client) id of the app registration (a UUID).",
            _uuid("8e4a0c7d-0f3b-4a55-9b1e-2c3d4e5f6a7b"),
        ),
        SettingSpec(
            "graph_url",
            "Microsoft Graph base URL, e.g. https://graph.microsoft.com/v1.0 (empty: from the preset).",
            _url(https_only=False),
        ),
        SettingSpec("supabase_url", "The fleet's Supabase project URL, e.g. https://abcd.supabase.co.", _url()),
        SettingSpec("supabase_anon_key", "The project's public (anon/publishable) key, sent as apikey.", _text),
        SettingSpec("bucket", "Storage bucket the documents go to.", _bucket),
        SettingSpec("ca_bundle", "Extra CA certificates (PEM) to trust, for TLS-inspecting proxies.", _path),
        SettingSpec("use_system_trust", "Trust the operating system's certificate store.", _bool),
        SettingSpec("proxy", "HTTP(S) proxy for every connection, e.g. http://proxy:3128; empty for direct.", _proxy),
        SettingSpec("digest_url", "Base URL of the older digest ingest service (digest mode only).", _url()),
        SettingSpec(
            "pipeline_mode",
            "register (default: upload, then register rows) or digest (sends every byte twice).",
            _choice("register", "digest"),
        ),
        SettingSpec(
            "delete_objects_on_remove",
            "Delete the stored object when the file is removed in OneDrive (default keeps it).",
            _bool,
        ),
        SettingSpec("include_sharepoint", "Offer SharePoint libraries (asks for Sites.Read.All).", _bool),
        SettingSpec(
            "vault_backend",
            "Where the vault key lives: auto (OS credential store), keyring, or file.",
            _choice("auto", "keyring", "file"),
        ),
        SettingSpec(
            "log_level", "DEBUG, INFO, WARNING or ERROR.", _choice("DEBUG", "INFO", "WARNING", "ERROR", lower=False)
        ),
        SettingSpec("upload_limit", "Upload cap, like 2mbit or 200KB/s; 0 for none.", _rate),
        SettingSpec("download_limit", "Download cap, like 2mbit or 200KB/s; 0 for none.", _rate),
        SettingSpec("concurrency_small", "Parallel transfers of small files.", _int(1, 32)),
        SettingSpec("concurrency_large", "Parallel transfers of large files.", _int(1, 8)),
        SettingSpec(
            "schedule", "Windows when syncing may run, like 22:00-06:00 (local time); empty for always.", _schedule
        ),
        SettingSpec(
            "sync_interval_minutes", "Minutes between background syncs (0: manual only).", _int(0, 7 * 24 * 60)
        ),
        SettingSpec("pause_on_metered", "Pause on metered networks unless Sync anyway is chosen.", _bool),
        SettingSpec("max_file_size_mb", "Files above this size are skipped with a reason.", _int(1, 250 * 1024)),
        SettingSpec("max_attempts", "Failures before a file is parked as a dead letter.", _int(1, 100)),
        SettingSpec("budget_monthly_mb", "Monthly data budget in MB (0: none).", _int(0, 10**9)),
        SettingSpec("budget_daily_mb", "Daily data budget in MB (0: none).", _int(0, 10**9)),
        SettingSpec("budget_reset_day", "Day of the month the data plan resets.", _int(1, 28)),
        SettingSpec("start_at_login", "Start the app when the user logs in.", _bool),
        SettingSpec("metadata_rules", "Overrides of the doc_type / system_tag tables (JSON object).", _metadata_rules),
        SettingSpec("skip_patterns", "Extra names, extensions and folders to skip (JSON object).", _skip_patterns),
    )
}

# Names the simulators print that are not settings of the app.
INFORMATIONAL_KEYS = {"data_dir": "the simulators' own folder, not a setting of the app"}


def parse_value(name: str, raw: Any) -> Any:
    spec = SPECS.get(name)
    if spec is None:
        raise ConfigError(name, f"there is no setting called {name!r}; run `celeste-desktop config list` to see them")
    try:
        return spec.parse(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(name, str(exc)) from None


def to_json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def load_settings(path: Path) -> Settings:
    """Read the settings file; a missing file gives the defaults, a bad one a ConfigError."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigError("settings file", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(
            "settings file",
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}); fix it or delete it to start over",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("settings file", f"{path} must hold a JSON object")
    values = {name: parse_value(name, value) for name, value in data.items() if name in SPECS}
    return Settings(**values)


def unknown_keys(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    return sorted(k for k in data if k not in SPECS) if isinstance(data, dict) else []


def save_settings(path: Path, settings: Settings) -> None:
    """Write only the values that differ from the defaults, atomically."""
    defaults = Settings()
    data = {
        f.name: to_json_value(getattr(settings, f.name))
        for f in dataclasses.fields(Settings)
        if getattr(settings, f.name) != getattr(defaults, f.name)
    }
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_ready(settings: Settings) -> list[ConfigError]:
    """What is missing before a sync can run; empty when ready."""
    problems: list[ConfigError] = []
    if not settings.yacht_id:
        problems.append(
            ConfigError(
                "yacht_id", "not set; run `celeste-desktop config set yacht_id <uuid>` or import a provisioning file"
            )
        )
    if not settings.client_id:
        problems.append(ConfigError("client_id", "not set; give the Application (client) id of the app registration"))
    if not settings.effective_authority:
        problems.append(ConfigError("authority", "not set; choose a cloud preset or give the sign-in host"))
    if not settings.effective_graph_url:
        problems.append(ConfigError("graph_url", "not set; choose a cloud preset or give the Graph URL"))
    if not settings.supabase_url:
        problems.append(ConfigError("supabase_url", "not set; give the fleet's Supabase project URL"))
    if not settings.supabase_anon_key:
        problems.append(ConfigError("supabase_anon_key", "not set; give the project's public (anon) key"))
    if settings.pipeline_mode == "digest" and not settings.digest_url:
        problems.append(ConfigError("digest_url", "pipeline_mode is digest but digest_url is empty"))
    return problems


def reference_markdown() -> str:
    """The settings reference (docs/settings.md); a test keeps the file in step with the code."""
    defaults = Settings()
    lines = [
        "# Settings reference",
        "",
        "Generated from `celeste_desktop/config/settings.py` by",
        "`python -c 'from celeste_desktop.config.settings import reference_markdown as r; print(r(), end=\"\")'`.",
        "Set them in the window, with `celeste-desktop config set NAME VALUE`, or with a provisioning",
        "file (`celeste-desktop config import FILE.json`). The file is `settings.json` in the config folder.",
        "",
        "| setting | default | what it does |",
        "| --- | --- | --- |",
    ]
    for spec in SPECS.values():
        default = to_json_value(getattr(defaults, spec.name))
        shown = (
            f"`{json.dumps(default)}`" if not isinstance(default, str) else (f"`{default}`" if default else "(empty)")
        )
        lines.append(f"| `{spec.name}` | {shown} | {spec.help} |")
    lines += [
        "",
        "Secrets are not settings: they go to the encrypted vault and are given on standard input.",
        "",
        "| secret | how to set it |",
        "| --- | --- |",
        "| `supabase_key` | the yacht-scoped key: `celeste-desktop config set supabase_key - < key.txt`, "
        "or a provisioning file |",
        "| `digest_salt` | the digest service's yacht salt (digest mode only): `config set digest_salt -` |",
        "",
    ]
    return "\n".join(lines)
