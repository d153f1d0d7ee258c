"""Rotating log files with secrets redacted at the handler.

Redaction happens on the fully formatted text (message, arguments and traceback), so a token
that slipped into an exception message or a URL is scrubbed whatever path it took. Known secret
values (the yacht key, the vault key) are registered at run time and removed verbatim; tokens,
``Authorization`` headers and the query strings of URLs (pre-authenticated download URLs carry
their credential there) are removed by pattern.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import threading
from pathlib import Path

REDACTED = "«redacted»"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JSON Web Tokens (access, id and Supabase keys) wherever they appear.
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Authorization / apikey headers in any rendering: "Authorization: Bearer x", ('authorization', 'x').
    (
        re.compile(
            r"(?i)(\b(?:authorization|proxy-authorization|apikey|x-yacht-signature)\b['\"]?\s*[:=,]\s*['\"]?)(?:bearer\s+|basic\s+)?[^\s'\",;]+"
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), f"Bearer {REDACTED}"),
    # OAuth fields in JSON, form bodies and reprs.
    (
        re.compile(
            r"(?i)(\b(?:access_token|refresh_token|id_token|client_secret|code_verifier|device_code|"
            r"password|client_info|supabase_key|digest_salt|secret|session_state)\b['\"]?\s*[:=]\s*['\"]?)[^\s'\"&,}]+"
        ),
        rf"\1{REDACTED}",
    ),
)
# Query strings of URLs: keep the parameter names, drop the values.
_QUERY = re.compile(r"(https?://[^\s?#'\"<>]+)\?([^\s#'\"<>]+)")


def _scrub_query(match: re.Match[str]) -> str:
    names = [part.split("=", 1)[0] for part in match.group(2).split("&") if part]
    return f"{match.group(1)}?" + "&".join(f"{name}={REDACTED}" for name in names)


class Redactor:
    """Removes secrets from text: registered values verbatim, and secret-shaped patterns."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add_secret(self, value: str | None) -> None:
        # Very short values would redact ordinary words; real secrets are long.
        if value and len(value) >= 8:
            with self._lock:
                self._values.add(value)

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return _QUERY.sub(_scrub_query, text)


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (traceback included) has passed through a ``Redactor``."""

    def __init__(self, redactor: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(super().format(record))


def configure_logging(log_file: Path | None, level: str, redactor: Redactor, *, console: bool = False) -> None:
    """Install redacting handlers on the root logger: a rotating file, and optionally stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_celeste", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(log_file, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
        )
    if console and sys.stderr is not None:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(RedactingFormatter(redactor))
        handler._celeste = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # httpx logs every request URL at INFO; keep it at WARNING unless debugging.
    for noisy in ("httpx", "httpcore", "msal", "urllib3", "hpack"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
