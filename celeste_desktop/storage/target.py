"""Where documents go: the Supabase project URL, its two keys, the yacht and the bucket, checked
before anything is sent, and the headers every request to the project carries.

Every request carries the project's anon key as ``apikey`` (the gateway admits only project
keys there) and the yacht key as ``Authorization: Bearer`` (row-level security reads its
``yacht_id`` claim). The service-role key bypasses every policy and must never sit on a bridge
PC: it is refused here, in either setting. Keys are never part of a message or a ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from celeste_desktop.config.settings import Settings
from celeste_desktop.domain.errors import ConfigError

__all__ = ["SupabaseTarget", "jwt_claims", "key_expiry"]

# Supabase's hosted projects (https://<ref>.supabase.co) serve TUS best from the direct storage
# host; Supabase's docs ask large uploads to go there.
_HOSTED = re.compile(r"^(?P<ref>[a-z0-9]{8,40})\.supabase\.co$")


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, read without checking the signature (the server does that), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def key_expiry(token: str) -> datetime | None:
    """When a JWT expires (its ``exp`` claim), or None when it has none."""
    claims = jwt_claims(token) or {}
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return datetime.fromtimestamp(exp, UTC)
    return None


def _quote_key(key: str) -> str:
    return urllib.parse.quote(key, safe="/")


@dataclass(frozen=True)
class SupabaseTarget:
    """A checked destination; build it with `create` or `from_settings`."""

    url: str
    anon_key: str = field(repr=False)
    key: str = field(repr=False)
    yacht_id: str
    bucket: str = "documents"
    tus_endpoint: str | None = None  # override; derived from ``url`` when None

    @classmethod
    def create(
        cls,
        *,
        url: str,
        anon_key: str,
        key: str,
        yacht_id: str,
        bucket: str = "documents",
        tus_endpoint: str | None = None,
    ) -> SupabaseTarget:
        """Check every value; raise `ConfigError` naming the setting that is wrong."""
        yacht = _check_yacht_id(yacht_id)
        base = _check_url(url)
        _check_anon_key(anon_key.strip())
        _check_yacht_key(key.strip(), yacht)
        if not bucket.strip():
            raise ConfigError("bucket", "is empty; the CelesteOS pipeline reads bucket `documents`.")
        return cls(
            url=base,
            anon_key=anon_key.strip(),
            key=key.strip(),
            yacht_id=yacht,
            bucket=bucket.strip(),
            tus_endpoint=tus_endpoint,
        )

    @classmethod
    def from_settings(cls, settings: Settings, key: str) -> SupabaseTarget:
        """The target the settings describe; ``key`` is the yacht key from the vault."""
        return cls.create(
            url=settings.supabase_url,
            anon_key=settings.supabase_anon_key,
            key=key,
            yacht_id=settings.yacht_id,
            bucket=settings.bucket,
        )

    # -- requests ------------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"apikey": self.anon_key, "Authorization": f"Bearer {self.key}"}

    def storage(self, path: str) -> str:
        """``{url}/storage/v1/{path}``."""
        return f"{self.url}/storage/v1/{path.lstrip('/')}"

    def object_url(self, key: str, *, kind: str = "") -> str:
        """``/storage/v1/object/[{kind}/]{bucket}/{key}``, the key percent-quoted."""
        middle = f"{kind.strip('/')}/" if kind else ""
        return self.storage(f"object/{middle}{self.bucket}/{_quote_key(key)}")

    def rest(self, table: str) -> str:
        return f"{self.url}/rest/v1/{table}"

    @property
    def resumable_endpoint(self) -> str:
        """The TUS creation URL: the direct storage host on Supabase's hosted service."""
        if self.tus_endpoint:
            return self.tus_endpoint.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        hosted = _HOSTED.match(parts.hostname or "")
        if hosted and parts.scheme == "https" and parts.port is None:
            return f"https://{hosted['ref']}.storage.supabase.co/storage/v1/upload/resumable"
        return self.storage("upload/resumable")

    def owns(self, key: str) -> bool:
        """Whether ``key`` lies under this yacht's folder (the only place its key may write)."""
        return key.startswith(f"{self.yacht_id}/")


# -- checks --------------------------------------------------------------------------------------


def _check_yacht_id(yacht_id: str) -> str:
    text = yacht_id.strip()
    if not text:
        raise ConfigError("yacht_id", "is empty; enter the yacht's id from the office (a UUID).")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ConfigError("yacht_id", "is not a UUID like 3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f.") from None


def _check_url(url: str) -> str:
    text = url.strip().rstrip("/")
    if not text:
        raise ConfigError("supabase_url", "is empty; enter the project URL, like https://<project>.supabase.co.")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("supabase_url", "must be an https:// URL, like https://<project>.supabase.co.")
    if parts.query or parts.fragment:
        raise ConfigError("supabase_url", "must not carry a query string or fragment.")
    if parts.path.rstrip("/").endswith(("/rest/v1", "/storage/v1")):
        raise ConfigError("supabase_url", "give the project URL only, without /rest/v1 or /storage/v1.")
    return text


def _check_anon_key(anon_key: str) -> None:
    if not anon_key:
        raise ConfigError("supabase_anon_key", "is empty; copy the project's anon (public) key from the office.")
    claims = jwt_claims(anon_key)
    if claims is None:
        return  # a publishable key (sb_publishable_…) is not a JWT: the gateway judges it
    role = claims.get("role")
    if role == "service_role":
        raise ConfigError(
            "supabase_anon_key",
            "holds the project's service-role key, which bypasses every protection and must never "
            "be stored on a yacht. Enter the anon (public) key instead, and ask the office to rotate "
            "the service-role key.",
        )
    if "yacht_id" in claims:
        raise ConfigError(
            "supabase_anon_key",
            "holds a yacht key. Put the yacht key in supabase_key and the project's anon key here.",
        )


def _check_yacht_key(key: str, yacht_id: str) -> None:
    if not key:
        raise ConfigError("supabase_key", "is empty; import the yacht key the office issued for this yacht.")
    claims = jwt_claims(key)
    if claims is None:
        raise ConfigError("supabase_key", "is not a yacht key (a yacht key has three parts separated by dots).")
    role = claims.get("role")
    if role == "service_role":
        raise ConfigError(
            "supabase_key",
            "holds the project's service-role key, which bypasses every protection and must never "
            "be stored on a yacht. Import this yacht's own key, and ask the office to rotate the "
            "service-role key.",
        )
    claimed = claims.get("yacht_id")
    if role == "anon" or claimed is None:
        raise ConfigError(
            "supabase_key",
            "is not a yacht key (it names no yacht). Import the yacht key the office issued for this yacht.",
        )
    try:
        claimed_id = str(uuid.UUID(str(claimed)))
    except ValueError:
        raise ConfigError("supabase_key", "names a malformed yacht id; ask the office for a new yacht key.") from None
    if claimed_id != yacht_id:
        raise ConfigError(
            "supabase_key",
            f"this key belongs to another yacht ({claimed_id}), but yacht_id is {yacht_id}. "
            "Check yacht_id, or import this yacht's own key.",
        )
