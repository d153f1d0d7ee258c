"""The few PostgREST calls the app makes (upsert, update, select), over the shared httpx client
and the one retry policy.

Why not the ``postgrest`` package (inside ``supabase``)? Its clients own their httpx session and
send requests themselves, so its calls would bypass `RetryPolicy` (throttling, backoff, the
shared concurrency gate), the byte meter and the bandwidth caps. The requests are small and
fixed, so they are built here by hand, exactly as supabase/README.md specifies them:
``POST /rest/v1/<table>?on_conflict=<cols>`` with ``Prefer: resolution=merge-duplicates``.
We ask for ``return=minimal`` unless the row is needed back (less to send over the satellite,
and no SELECT policy needed); the connection upsert asks for ``return=representation`` to learn
the row's ``id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from celeste_desktop.domain.errors import MalformedResponse, RemoteError
from celeste_desktop.net.policy import RetryPolicy
from celeste_desktop.storage.errors import explain
from celeste_desktop.storage.target import SupabaseTarget

__all__ = ["SERVICE", "RestClient"]

SERVICE = "Supabase database"
Row = dict[str, Any]


class RestClient:
    """PostgREST on the target project, as the yacht key."""

    def __init__(self, client: httpx.AsyncClient, policy: RetryPolicy, target: SupabaseTarget) -> None:
        self._client = client
        self._policy = policy
        self.target = target

    def _headers(self, prefer: str | None = None) -> dict[str, str]:
        headers = {**self.target.headers(), "Accept": "application/json"}
        if prefer:
            headers["Prefer"] = prefer
        return headers

    async def _send(
        self,
        method: str,
        table: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str],
        content: bytes | None = None,
        what: str,
    ) -> httpx.Response:
        def build() -> httpx.Request:
            # A fresh Request per attempt (the policy may send more than once), with the
            # client's own headers (User-Agent) merged in.
            return self._client.build_request(
                method, self.target.rest(table), params=dict(params or {}), headers=dict(headers), content=content
            )

        try:
            return await self._policy.send(self._client, build, service=SERVICE, what=what)
        except RemoteError as exc:
            target = self.target
            error = explain(exc, yacht_id=target.yacht_id, url=target.url, bucket=target.bucket, op="rest")
            if error is exc:
                raise
            raise error from exc

    async def upsert(
        self,
        table: str,
        rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        on_conflict: str,
        returning: bool = False,
    ) -> list[Row]:
        """Insert or merge ``rows`` on the ``on_conflict`` columns; the rows back if ``returning``."""
        body = [dict(rows)] if isinstance(rows, Mapping) else [dict(r) for r in rows]
        if not body:
            return []
        # missing=default: a bulk insert must not turn a key absent from one object into NULL.
        prefer = f"resolution=merge-duplicates,return={'representation' if returning else 'minimal'},missing=default"
        response = await self._send(
            "POST",
            table,
            params={"on_conflict": on_conflict},
            headers={**self._headers(prefer), "Content-Type": "application/json"},
            content=_json(body),
            what=f"saving {len(body)} row(s) to {table}",
        )
        return _rows(response, table) if returning else []

    async def update(self, table: str, filters: Mapping[str, str], values: Mapping[str, Any]) -> None:
        """``PATCH`` the rows matching ``filters`` (``{"col": "eq.value"}``); zero rows is not an error."""
        await self._send(
            "PATCH",
            table,
            params=filters,
            headers={**self._headers("return=minimal"), "Content-Type": "application/json"},
            content=_json(dict(values)),
            what=f"updating {table}",
        )

    async def select(self, table: str, params: Mapping[str, str]) -> list[Row]:
        response = await self._send("GET", table, params=params, headers=self._headers(), what=f"reading {table}")
        return _rows(response, table)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def _rows(response: httpx.Response, table: str) -> list[Row]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise MalformedResponse(
            f"{SERVICE} answered with something other than rows while reading {table}.", service=SERVICE
        )
    return data
