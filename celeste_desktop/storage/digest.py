"""Digest mode: hand each file to the older CelesteOS ingest service instead of uploading and
registering it ourselves (``pipeline_mode = digest``).

``POST {digest_url}/webhook/ingest-docs-nas-cloud``, multipart with a ``file`` part and a
``data`` part (JSON: yacht_id, filename, content_type, file_size, system_path, directories,
doc_type, system_tag, source), headers ``X-Yacht-ID`` and ``X-Yacht-Signature`` = lower-case hex
SHA-256 of ``yacht_id + salt`` (a plain hash of the concatenation, not an HMAC). The service
answers HTTP 200 even when it fails: ``status`` in the body decides (``success``,
``duplicate``, ``error``). Its limits are checked before a byte is sent: a 36-character yacht
id, at most 500 MB, and only the content types it accepts.

The file part is streamed from the spool file (httpx reads file parts in small pieces). The
service wants the body itself, so a file copied to Storage too crosses the link twice: that is
why ``register`` is the default mode.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
from pathlib import Path
from typing import IO, Any

import httpx

from celeste_desktop.domain.errors import ConfigError, MalformedResponse
from celeste_desktop.domain.metadata import MetadataRules, classify
from celeste_desktop.domain.rules import MIB, content_type_for
from celeste_desktop.net.policy import RetryPolicy
from celeste_desktop.storage.errors import DigestFailed, FileNotAccepted, too_large
from celeste_desktop.storage.registration import SOURCE, DocumentRecord

__all__ = ["DIGEST_CONTENT_TYPES", "DIGEST_PATH", "MAX_DIGEST_BYTES", "DigestClient", "DigestOutcome", "signature"]

SERVICE = "Digest service"
DIGEST_PATH = "/webhook/ingest-docs-nas-cloud"
MAX_DIGEST_BYTES = 500 * MIB
DIGEST_CONTENT_TYPES = frozenset({
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "text/plain", "text/csv", "application/json", "application/xml", "text/xml", "text/html",
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/svg+xml",
    "application/zip", "application/x-zip-compressed", "application/x-tar",
    "application/gzip", "application/x-gzip",
})  # fmt: skip


class DigestOutcome(enum.StrEnum):
    SUCCESS = "success"
    DUPLICATE = "duplicate"  # the service already had this file: nothing new, not an error


def signature(yacht_id: str, salt: str) -> str:
    """``X-Yacht-Signature``: lower-case hex SHA-256 of ``yacht_id + salt``."""
    return hashlib.sha256(f"{yacht_id}{salt}".encode()).hexdigest()


class DigestClient:
    """Sends files to the digest service through the shared client and retry policy."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: RetryPolicy,
        *,
        digest_url: str,
        yacht_id: str,
        salt: str,
        rules: MetadataRules | None = None,
    ) -> None:
        if not digest_url.strip():
            raise ConfigError("digest_url", "is empty; digest mode needs the ingest service's URL.")
        if len(yacht_id) != 36:
            raise ConfigError("yacht_id", "must be the 36-character id the ingest service knows (a UUID).")
        if not salt:
            raise ConfigError(
                "digest_salt", "is empty; import the yacht salt from the office (config set digest_salt -)."
            )
        self._client = client
        self._policy = policy
        self._url = digest_url.strip().rstrip("/") + DIGEST_PATH
        self._yacht_id = yacht_id
        self._signature = signature(yacht_id, salt)
        self._rules = rules

    def check(self, record: DocumentRecord) -> str:
        """The content type to send; raises if the service would refuse the file."""
        kind = record.content_type or content_type_for(record.name)
        if record.size > MAX_DIGEST_BYTES:
            raise too_large(
                record.original_path, record.size, MAX_DIGEST_BYTES,
                limit_name="the ingest service's limit", service=SERVICE,
            )  # fmt: skip
        if kind.split(";")[0].strip().lower() not in DIGEST_CONTENT_TYPES:
            raise FileNotAccepted(
                f"The ingest service does not take {kind} files, so “{record.original_path}” is not sent. "
                "Switch pipeline_mode to register to copy every kind of file.",
                path=record.original_path,
            )
        return kind

    def data(self, record: DocumentRecord, content_type: str) -> dict[str, Any]:
        tags = classify(record.folder_path, record.name, self._rules)
        return {
            "yacht_id": self._yacht_id,
            "filename": record.name,
            "content_type": content_type,
            "file_size": record.size,
            "system_path": record.system_path,
            "directories": list(record.folder_path),
            "doc_type": tags.doc_type,
            "system_tag": tags.system_tag,
            "source": SOURCE,
        }

    async def send(self, source: Path, record: DocumentRecord) -> DigestOutcome:
        """Send one file; `DigestFailed` when the service answers ``status: error``."""
        kind = self.check(record)
        size = (await asyncio.to_thread(source.stat)).st_size
        if size != record.size:
            raise ValueError("the spool file's size differs from the record's")
        data = json.dumps(self.data(record, kind), ensure_ascii=False)
        headers = {"X-Yacht-ID": self._yacht_id, "X-Yacht-Signature": self._signature, "Accept": "application/json"}
        opened: list[IO[bytes]] = []

        def build() -> httpx.Request:
            handle = source.open("rb")
            opened.append(handle)
            files = {"file": (record.name, handle, kind)}
            return self._client.build_request("POST", self._url, headers=headers, data={"data": data}, files=files)

        try:
            response = await self._policy.send(
                self._client, build, service=SERVICE, what=f"sending “{record.original_path}”"
            )
        finally:
            for handle in opened:
                handle.close()
        return _outcome(response, record.original_path)


def _outcome(response: httpx.Response, display: str) -> DigestOutcome:
    try:
        body = response.json()
    except ValueError:
        body = None
    status = body.get("status") if isinstance(body, dict) else None
    if status == DigestOutcome.SUCCESS:
        return DigestOutcome.SUCCESS
    if status == DigestOutcome.DUPLICATE:
        return DigestOutcome.DUPLICATE
    if status == "error":
        detail = next((body.get(k) for k in ("message", "error", "detail") if isinstance(body.get(k), str)), None)
        raise DigestFailed(
            f"The ingest service refused “{display}”: {detail or 'no reason given'}. "
            "Check digest_salt and yacht_id; if it keeps happening, export diagnostics for the office.",
            status=response.status_code,
            code="error",
            service=SERVICE,
            path=display,
        )
    raise MalformedResponse(f"The ingest service gave no status for “{display}”.", service=SERVICE)

