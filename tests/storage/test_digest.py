"""Digest mode against a small stand-in of the ingest service: the signed multipart request,
``status`` in the body deciding, and the service's limits checked before sending."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from destination_fakes import write_file
from digest_service import DIGEST_SALT, DIGEST_YACHT, DigestService

from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.http import HttpOptions, make_async_client
from celeste_desktop.net.policy import RetryPolicy
from celeste_desktop.storage.digest import MAX_DIGEST_BYTES, DigestClient, DigestOutcome, signature
from celeste_desktop.storage.errors import DigestFailed, FileNotAccepted, FileTooLarge
from celeste_desktop.storage.registration import DocumentRecord


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with make_async_client(HttpOptions()) as client:
        yield client


def record(name: str, size: int, folders: tuple[str, ...] = ("06_PROCEDURES", "Fire Safety")) -> DocumentRecord:
    return DocumentRecord(
        drive_id="b!d", item_id="I1", name=name, folder_path=folders, storage_key=f"{DIGEST_YACHT}/{name}", size=size
    )


def client_for(http: httpx.AsyncClient, url: str, *, salt: str = DIGEST_SALT) -> DigestClient:
    policy = RetryPolicy(clock=FakeClock(), max_attempts=3)
    return DigestClient(http, policy, digest_url=url, yacht_id=DIGEST_YACHT, salt=salt)


def test_the_signature_is_a_plain_sha256_of_yacht_id_and_salt() -> None:
    expected = hashlib.sha256(f"{DIGEST_YACHT}{DIGEST_SALT}".encode()).hexdigest()
    assert signature(DIGEST_YACHT, DIGEST_SALT) == expected == expected.lower()


async def test_a_file_is_sent_signed_with_its_metadata(
    http: httpx.AsyncClient, digest: tuple[DigestService, str], tmp_path: Path
) -> None:
    service, url = digest
    source = write_file(tmp_path / "spool", 70_000)
    outcome = await client_for(http, url).send(source, record("Fire Plan – Deck 3.pdf", 70_000))
    assert outcome is DigestOutcome.SUCCESS
    [got] = service.received
    assert got.body == source.read_bytes() and got.content_type == "application/pdf"
    assert got.data == {
        "yacht_id": DIGEST_YACHT,
        "filename": "Fire Plan – Deck 3.pdf",
        "content_type": "application/pdf",
        "file_size": 70_000,
        "system_path": "06_PROCEDURES/Fire Safety",
        "directories": ["06_PROCEDURES", "Fire Safety"],
        "doc_type": "sop",
        "system_tag": "safety",
        "source": "onedrive",
    }


async def test_the_same_file_again_is_a_duplicate_not_an_error(
    http: httpx.AsyncClient, digest: tuple[DigestService, str], tmp_path: Path
) -> None:
    _, url = digest
    source = write_file(tmp_path / "spool", 1000)
    client = client_for(http, url)
    assert await client.send(source, record("a.pdf", 1000)) is DigestOutcome.SUCCESS
    assert await client.send(source, record("a.pdf", 1000)) is DigestOutcome.DUPLICATE


async def test_an_error_status_in_a_200_reply_is_an_error(
    http: httpx.AsyncClient, digest: tuple[DigestService, str], tmp_path: Path
) -> None:
    _, url = digest
    with pytest.raises(DigestFailed) as caught:
        await client_for(http, url, salt="wrong").send(write_file(tmp_path / "s", 10), record("a.pdf", 10))
    assert "Invalid yacht signature" in caught.value.message and "digest_salt" in caught.value.message


async def test_the_services_limits_are_checked_before_sending(
    http: httpx.AsyncClient, digest: tuple[DigestService, str]
) -> None:
    service, url = digest
    client = client_for(http, url)
    with pytest.raises(FileTooLarge) as too_big:
        client.check(record("Survey.pdf", MAX_DIGEST_BYTES + 1))
    assert "500 MB" in too_big.value.message
    with pytest.raises(FileNotAccepted) as refused:
        client.check(record("Deck.dwg", 10))
    assert "image/vnd.dwg" in refused.value.message and "pipeline_mode" in refused.value.message
    assert client.check(record("Photo.JPG", 10)) == "image/jpeg"
    assert service.received == []


def test_digest_settings_are_checked(http: httpx.AsyncClient) -> None:
    policy = RetryPolicy(clock=FakeClock())
    with pytest.raises(ConfigError) as caught:
        DigestClient(http, policy, digest_url="http://x", yacht_id="short", salt="s")
    assert caught.value.setting == "yacht_id"
    with pytest.raises(ConfigError) as caught:
        DigestClient(http, policy, digest_url="http://x", yacht_id=DIGEST_YACHT, salt="")
    assert caught.value.setting == "digest_salt"
    with pytest.raises(ConfigError) as caught:
        DigestClient(http, policy, digest_url="", yacht_id=DIGEST_YACHT, salt="s")
    assert caught.value.setting == "digest_url"
