"""The GUI's "Test connection": checks the Supabase URL, both keys, the bucket and the tables,
and says exactly what is wrong, naming the setting to fix.

Checks run in order and stop at the first one that makes the rest meaningless (no project at
that URL, a refused key). Nothing is written: the bucket is read with
``GET /storage/v1/bucket/{bucket}`` (allowed to a yacht key by our policy on
``storage.buckets``) and each table with ``GET /rest/v1/{table}?select=id&limit=1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from celeste_desktop.config.settings import Settings
from celeste_desktop.domain.errors import CelesteError, ConfigError, RemoteError
from celeste_desktop.domain.rules import format_size
from celeste_desktop.net.policy import (
    Action,
    RetryPolicy,
    Verdict,
    default_classifier,
    parse_error_body,
    supabase_storage_classifier,
)
from celeste_desktop.storage.errors import explain
from celeste_desktop.storage.target import SupabaseTarget, key_expiry

__all__ = ["TABLES", "CheckItem", "DestinationReport", "check_destination"]

TABLES = ("doc_metadata", "search_index", "onedrive_connections", "onedrive_sync_state", "onedrive_sync_jobs")
SERVICE = "Supabase"


@dataclass(frozen=True)
class CheckItem:
    name: str  # what was checked: "settings", "project", "yacht key", "bucket", "table doc_metadata"
    ok: bool
    message: str
    setting: str | None = None  # the setting to fix, when one is to blame


@dataclass(frozen=True)
class DestinationReport:
    items: tuple[CheckItem, ...]

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def problems(self) -> tuple[CheckItem, ...]:
        return tuple(item for item in self.items if not item.ok)

    def summary(self) -> str:
        if self.ok:
            return "Supabase is ready: " + "; ".join(item.message for item in self.items)
        return "\n".join(item.message for item in self.problems)


def _return_client_errors(classify: Callable[[httpx.Response], Verdict]) -> Callable[[httpx.Response], Verdict]:
    """Hand 4xx replies back to be judged here; let the policy retry 5xx and throttling."""

    def judge(response: httpx.Response) -> Verdict:
        verdict = classify(response)
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            return Verdict(Action.RETURN, status=verdict.status, code=verdict.code, detail=verdict.detail)
        return verdict

    return judge


def _as_error(response: httpx.Response) -> RemoteError:
    body = parse_error_body(response)
    status = body.status if response.status_code == 400 and body.status else response.status_code
    return RemoteError(body.message or response.reason_phrase, status=status, code=body.code, service=SERVICE)


def _item(name: str, error: CelesteError) -> CheckItem:
    setting = error.setting if isinstance(error, ConfigError) else None
    return CheckItem(name, False, error.message, setting)


async def check_destination(
    client: httpx.AsyncClient,
    policy: RetryPolicy,
    settings: Settings,
    key: str,
    *,
    now: datetime,
) -> DestinationReport:
    """Check everything the upload and registration need; never raises for what it finds."""
    items: list[CheckItem] = []
    try:
        target = SupabaseTarget.from_settings(settings, key)
    except ConfigError as exc:
        return DestinationReport((_item("settings", exc),))
    expiry = key_expiry(target.key)
    if expiry is not None and expiry <= now:
        message = f"supabase_key: the yacht key expired on {expiry:%Y-%m-%d}; ask the office for a new one."
        return DestinationReport((CheckItem("yacht key", False, message, "supabase_key"),))
    expires = f", valid until {expiry:%Y-%m-%d}" if expiry is not None else ""
    items.append(CheckItem("yacht key", True, f"the key is for yacht {target.yacht_id}{expires}"))

    async def get(url: str, classify: Callable[[httpx.Response], Verdict], what: str) -> httpx.Response:
        headers = {**target.headers(), "Accept": "application/json"}
        return await policy.send(
            client,
            lambda: client.build_request("GET", url, headers=headers),
            service=SERVICE,
            classify=_return_client_errors(classify),
            what=what,
        )

    def explained(error: RemoteError, op: str) -> CelesteError:
        return explain(error, yacht_id=target.yacht_id, url=target.url, bucket=target.bucket, op=op)

    # The project and the bucket in one request: the gateway judges the anon key, Storage the
    # yacht key, and the bucket's policy our migrations.
    try:
        bucket_url = target.storage(f"bucket/{target.bucket}")
        response = await get(bucket_url, supabase_storage_classifier, "checking the bucket")
    except RemoteError as exc:
        message = f"supabase_url: {target.url} could not be reached ({exc.message})"
        return DestinationReport((*items, CheckItem("project", False, message, "supabase_url")))
    if response.status_code >= 400:
        error = _as_error(response)
        judged = explained(error, "bucket")
        if judged is error and response.status_code == 404 and not parse_error_body(response).message:
            judged = ConfigError("supabase_url", f"{target.url} does not answer like a Supabase project.")
        items.append(_item("bucket", judged))
        return DestinationReport(tuple(items))
    try:
        limit = response.json().get("file_size_limit")
    except (ValueError, AttributeError):
        limit = None
    limit_text = f", files up to {format_size(limit)}" if isinstance(limit, int) else ""
    items.append(CheckItem("bucket", True, f"bucket “{target.bucket}” is reachable{limit_text}"))

    for table in TABLES:
        try:
            response = await get(
                f"{target.rest(table)}?select=id&limit=1", default_classifier, f"checking table {table}"
            )
        except RemoteError as exc:
            items.append(CheckItem(f"table {table}", False, exc.message))
            continue
        if response.status_code >= 400:
            judged = explained(_as_error(response), "rest")
            items.append(_item(f"table {table}", judged))
            if isinstance(judged, ConfigError):
                break  # a key or URL problem: every other table says the same
            continue
        items.append(CheckItem(f"table {table}", True, f"table {table} is ready"))
    return DestinationReport(tuple(items))
