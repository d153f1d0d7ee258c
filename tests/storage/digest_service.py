"""A tiny stand-in for the older CelesteOS digest (ingest) service, on the simulators' HTTP
framework: ``POST /webhook/ingest-docs-nas-cloud`` with a multipart ``file`` and ``data``.

It behaves as FACTS.md describes the real one: it checks ``X-Yacht-ID`` and
``X-Yacht-Signature`` (SHA-256 of yacht id + salt), its limits, and always answers HTTP 200 with
``status`` ``success``, ``duplicate`` (same file name and bytes again) or ``error``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from celeste_desktop.sim.http import Request, Response, Router

DIGEST_YACHT = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"
DIGEST_SALT = "pepper-1"


@dataclass
class Received:
    data: dict[str, Any]
    filename: str | None
    content_type: str
    body: bytes


@dataclass
class DigestService:
    salts: dict[str, str]  # yacht id -> salt
    received: list[Received] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def router(self) -> Router:
        router = Router()
        router.add("POST", "/webhook/ingest-docs-nas-cloud", self.ingest)
        return router

    async def ingest(self, request: Request) -> Response:
        yacht = request.header("x-yacht-id") or ""
        salt = self.salts.get(yacht)
        expected = hashlib.sha256(f"{yacht}{salt}".encode()).hexdigest() if salt is not None else None
        if expected is None or request.header("x-yacht-signature") != expected:
            return Response.json({"status": "error", "message": "Invalid yacht signature"})
        raw = await request.read(limit=600 * 1024 * 1024)
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + (request.header("content-type") or "").encode("latin-1") + b"\r\n\r\n" + raw
        )
        parts: dict[str, tuple[bytes, str, str | None]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                parts[name] = (payload, part.get_content_type(), part.get_filename())
        if "file" not in parts or "data" not in parts:
            return Response.json({"status": "error", "message": "file and data are required"})
        data = json.loads(parts["data"][0])
        body, content_type, filename = parts["file"]
        if len(yacht) != 36 or data.get("yacht_id") != yacht:
            return Response.json({"status": "error", "message": "Invalid yacht id"})
        self.received.append(Received(data, filename, content_type, body))
        identity = (str(data.get("filename")), hashlib.sha256(body).hexdigest())
        if identity in self.seen:
            return Response.json({"status": "duplicate", "message": "Document already exists"})
        self.seen.add(identity)
        return Response.json({"status": "success", "document_id": "doc-1"})
