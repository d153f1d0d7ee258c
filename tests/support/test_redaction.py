"""Secrets are removed at the handler: whatever reaches a log file has passed the redactor."""

import logging
from pathlib import Path

import pytest

from celeste_desktop.support.logs import Redactor, configure_logging

ACCESS_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvZmZpY2VyIiwic2NwIjoiRmlsZXMuUmVhZC5BbGwifQ.c2lnbmF0dXJlLXBhcnQ"
)
REFRESH_TOKEN = "0.AQYA-refresh-token-opaque-value-1234567890"
YACHT_KEY = "sb-yacht-key-5b1f0e0e-0b9a-4f0e-9d7e-secret"
DOWNLOAD_URL = "https://sim-download.example/download/abc?tempauth=v1.SECRETSIGNATURE&ApiVersion=2.0"


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Path, Redactor]:
    redactor = Redactor()
    log_file = tmp_path / "logs" / "app.log"
    configure_logging(log_file, "DEBUG", redactor)
    yield log_file, redactor
    for handler in list(logging.getLogger().handlers):
        if getattr(handler, "_celeste", False):
            logging.getLogger().removeHandler(handler)
            handler.close()


def test_tokens_keys_headers_and_url_queries_never_reach_the_file(logged: tuple[Path, Redactor]) -> None:
    log_file, redactor = logged
    redactor.add_secret(YACHT_KEY)
    log = logging.getLogger("celeste_desktop.test")
    log.info("request headers %s", {"Authorization": f"Bearer {ACCESS_TOKEN}", "apikey": YACHT_KEY})
    log.info("token reply: %s", f'{{"access_token": "{ACCESS_TOKEN}", "refresh_token": "{REFRESH_TOKEN}"}}')
    log.warning("download failed for %s", DOWNLOAD_URL)
    log.debug("form body grant_type=refresh_token&refresh_token=%s&client_id=x", REFRESH_TOKEN)
    try:
        raise RuntimeError(f"upload refused with key {YACHT_KEY} at {DOWNLOAD_URL}")
    except RuntimeError:
        log.exception("upload failed")
    text = log_file.read_text()
    for secret in (ACCESS_TOKEN, REFRESH_TOKEN, YACHT_KEY, "SECRETSIGNATURE"):
        assert secret not in text
    # What is left is still useful to a support engineer.
    assert "download failed for https://sim-download.example/download/abc?tempauth=«redacted»" in text
    assert "upload failed" in text and "RuntimeError" in text


def test_ordinary_text_is_left_alone() -> None:
    redactor = Redactor()
    text = "Synced 12 files (3.4 MB) from 02_ENGINEERING/Main Engines in 8 s"
    assert redactor.redact(text) == text
