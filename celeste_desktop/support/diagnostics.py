"""The diagnostics bundle a support engineer asks for: logs, settings and a state summary.

Everything that goes into the zip passes the redactor again (logs were redacted when written;
this is a second line of defence for anything written before a secret was known), and the vault
contributes only the names of what it holds, never values.
"""

from __future__ import annotations

import json
import platform
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celeste_desktop import __version__
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.support.logs import Redactor

MAX_LOG_BYTES = 20 * 1024 * 1024  # per file: the newest part of a very large log is what helps


@dataclass(frozen=True)
class DiagnosticsInput:
    paths: AppPaths
    redactor: Redactor
    state_summary: Callable[[], dict[str, Any]] | None = None
    vault_names: Callable[[], list[str]] | None = None


def _environment() -> dict[str, Any]:
    packages: dict[str, str] = {}
    for name in (
        "PySide6-Essentials",
        "qasync",
        "msal",
        "httpx",
        "cryptography",
        "SQLAlchemy",
        "truststore",
        "keyring",
    ):
        try:
            from importlib.metadata import version

            packages[name] = version(name)
        except Exception:  # a missing package is itself worth reporting
            packages[name] = "not installed"
    return {
        "app_version": __version__,
        "python": sys.version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "frozen": bool(getattr(sys, "frozen", False)),
        "packages": packages,
        "created_at": datetime.now(UTC).isoformat(),
    }


def _log_files(paths: AppPaths) -> Iterable[Path]:
    if paths.log_dir.is_dir():
        yield from sorted(p for p in paths.log_dir.iterdir() if p.is_file() and ".log" in p.name)


def _tail_text(path: Path) -> str:
    with path.open("rb") as handle:
        size = path.stat().st_size
        if size > MAX_LOG_BYTES:
            handle.seek(size - MAX_LOG_BYTES)
        return handle.read().decode("utf-8", "replace")


def write_diagnostics(target: Path, source: DiagnosticsInput) -> list[str]:
    """Write the bundle to ``target`` (a .zip); returns the names of the entries written."""
    redact = source.redactor.redact
    entries: dict[str, str] = {"environment.json": json.dumps(_environment(), indent=2)}
    settings_file = source.paths.settings_file
    entries["settings.json"] = redact(settings_file.read_text(encoding="utf-8")) if settings_file.exists() else "{}"
    summary: dict[str, Any] = {}
    if source.state_summary is not None:
        try:
            summary = source.state_summary()
        except Exception as exc:  # a damaged state must not stop the bundle that explains it
            summary = {"error": f"state summary failed: {type(exc).__name__}: {exc}"}
    if source.vault_names is not None:
        try:
            summary["vault_entries"] = source.vault_names()
        except Exception as exc:
            summary["vault_entries"] = f"unreadable: {type(exc).__name__}"
    entries["state-summary.json"] = redact(json.dumps(summary, indent=2, default=str))
    for log in _log_files(source.paths):
        entries[f"logs/{log.name}"] = redact(_tail_text(log))
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return list(entries)
