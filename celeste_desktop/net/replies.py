"""What a reply means: error bodies of Graph, Storage, PostgREST and OAuth read defensively,
the classifiers that map a reply to a `Verdict`, and messages fit for a person (never a query
string, header or token).

A service whose errors hide in the body passes its own `Classifier` to `RetryPolicy.send`;
`supabase_storage_classifier` is the one for Supabase Storage, which answers most errors as
HTTP 400 with the real status in ``statusCode``.
"""

from __future__ import annotations

import enum
import json
import math
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from celeste_desktop.domain.errors import (
    AccessDenied,
    MalformedResponse,
    NotFound,
    QuotaExceeded,
    RemoteError,
    ServiceUnavailable,
)

__all__ = [
    "ERROR_BODY_LIMIT",
    "Action",
    "Classifier",
    "ErrorBody",
    "Verdict",
    "certificate_error",
    "classify_status",
    "default_classifier",
    "describe_transport_error",
    "failure_message",
    "parse_error_body",
    "parse_retry_after",
    "read_error_reply",
    "safe_text",
    "safe_url",
    "status_label",
    "supabase_storage_classifier",
]

ERROR_BODY_LIMIT = 64 * 1024
_RETRY_AFTER_CEILING = 3600.0  # a garbled or hostile header must not park the app for days


class Action(enum.Enum):
    """What the policy does with an error reply."""

    RETURN = "return"  # hand the (read, closed) reply to the caller, who knows what it means
    THROTTLE = "throttle"  # the service asks us to slow down
    RETRY = "retry"  # transient: back off and try again
    REFRESH = "refresh"  # credentials expired: refresh once, retry once
    FAIL = "fail"  # raise at once


@dataclass(frozen=True)
class Verdict:
    action: Action
    error: type[RemoteError] = RemoteError
    status: int | None = None  # the status that counts (Storage hides it in the body)
    code: str | None = None  # the service's error code, e.g. "accessDenied", "Duplicate"
    detail: str | None = None  # the service's own words, already made safe
    hint: str | None = None  # what a person can do; a default per status when None


Classifier = Callable[[httpx.Response], Verdict]


# -- reading error replies ---------------------------------------------------------------------

_URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>]*)[?#][^\s\"'<>]*", re.IGNORECASE)
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
_BEARER = re.compile(r"(bearer\s+)\S+", re.IGNORECASE)


def safe_url(url: httpx.URL | str) -> str:
    """The URL without query string, fragment or credentials: fit for messages and logs."""
    parsed = httpx.URL(str(url))
    return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))


def safe_text(text: str, limit: int = 300) -> str:
    """Service text made fit for a person: no query strings, tokens, runs of whitespace."""
    text = _URL_QUERY.sub(r"\1", text)
    text = _JWT.sub("[token]", text)
    text = _BEARER.sub(r"\1[token]", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class ErrorBody:
    code: str | None = None
    message: str | None = None
    status: int | None = None  # a status given inside the body (Supabase Storage)


def _str_or_none(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_error_body(response: httpx.Response) -> ErrorBody:
    """Code and message from Graph, Storage, PostgREST or OAuth error bodies; never raises."""
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, httpx.ResponseNotRead):
        return ErrorBody()
    if not isinstance(data, dict):
        return ErrorBody()
    error = data.get("error")
    if isinstance(error, dict):  # Graph: {"error": {"code", "message", "innerError"}}
        return ErrorBody(_str_or_none(error.get("code")), _str_or_none(error.get("message")))
    status_text = str(data.get("statusCode", ""))  # Storage: statusCode, error, message
    status = int(status_text) if status_text.isdigit() else None
    code = _str_or_none(error) or _str_or_none(data.get("code"))  # PostgREST: "code"
    message = _str_or_none(data.get("message")) or _str_or_none(data.get("error_description"))
    details = _str_or_none(data.get("details"))  # PostgREST adds details and hint
    if message and details:
        message = f"{message} ({details})"
    return ErrorBody(code, message or details, status)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP-dates are GMT by definition
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), _RETRY_AFTER_CEILING)


def classify_status(
    status: int, *, code: str | None = None, detail: str | None = None, retry_after: bool = False
) -> Verdict:
    """The default meaning of a status; `retry_after` says whether the reply carried one."""
    clean = safe_text(detail) if detail else None

    def verdict(action: Action, error: type[RemoteError] = RemoteError) -> Verdict:
        return Verdict(action, error, status, code, clean)

    if status == 401:
        return verdict(Action.REFRESH, AccessDenied)
    if status == 429 or (status in (503, 509) and retry_after):
        return verdict(Action.THROTTLE, ServiceUnavailable)
    if status == 403:
        return verdict(Action.FAIL, AccessDenied)
    if status == 404:
        return verdict(Action.FAIL, NotFound)
    if status in (413, 507):
        return verdict(Action.FAIL, QuotaExceeded)
    if status == 408 or (status >= 500 and status not in (501, 505)):
        return verdict(Action.RETRY, ServiceUnavailable)
    return verdict(Action.FAIL)


def default_classifier(response: httpx.Response) -> Verdict:
    """Status first; code and message from the body when it has them."""
    body = parse_error_body(response)
    return classify_status(
        response.status_code,
        code=body.code,
        detail=body.message,
        retry_after="retry-after" in response.headers,
    )


def supabase_storage_classifier(response: httpx.Response) -> Verdict:
    """Storage answers most errors as 400 with the real status in the body's ``statusCode``."""
    body = parse_error_body(response)
    status = response.status_code
    if status == 400 and body.status is not None and 400 <= body.status < 600:
        status = body.status
    return classify_status(status, code=body.code, detail=body.message, retry_after="retry-after" in response.headers)


# -- messages ----------------------------------------------------------------------------------

_LEADS: dict[type[RemoteError], str] = {
    AccessDenied: "refused access",
    NotFound: "could not find it",
    QuotaExceeded: "reported a quota or size limit",
    ServiceUnavailable: "kept failing",
    MalformedResponse: "sent a reply that could not be read",
}

_HINTS: dict[int, str] = {
    401: "Sign in again, or check the key in Settings; if it keeps happening, export diagnostics for support.",
    403: "The signed-in account or key has no permission for this. Ask the owner to share "
    "it, or sign in with an account that has access.",
    404: "It may have been moved or deleted since it was listed; refresh the folder list.",
    409: "Something with the same name already exists or changed at the same time.",
    413: "The file is larger than the service accepts: raise the size limit or skip the file.",
    507: "The storage quota is full: free space or ask for a larger quota.",
}
_HINT_4XX = "The service refused the request; if it keeps happening, export diagnostics."
_HINT_RETRY = "The copy will try again later by itself; if it keeps happening, check the link."


def status_label(status: int | None, code: str | None, reason: str) -> str:
    parts = [str(status)] if status is not None else []
    parts.append(code or reason)
    return " ".join(p for p in parts if p)


def failure_message(
    service: str,
    verdict: Verdict,
    status: int,
    reason: str,
    *,
    what: str | None,
    lead: str | None = None,
) -> str:
    """ "<service> <lead> (<status> <code>) while <what>: <their words>. <what to do>"."""
    if lead is None:
        lead = _LEADS.get(verdict.error, "refused the request")
    label = status_label(verdict.status or status, verdict.code, reason)
    where = f" while {safe_text(what)}" if what else ""
    detail = (verdict.detail or reason or "no explanation given").rstrip(". ")
    hint = (
        verdict.hint
        or _HINTS.get(verdict.status or status)
        or (_HINT_RETRY if verdict.action in (Action.RETRY, Action.THROTTLE) else _HINT_4XX)
    )
    return f"{service} {lead} ({label}){where}: {detail}. {hint}"


def describe_transport_error(exc: httpx.TransportError) -> str:
    kinds: list[tuple[type[httpx.TransportError], str]] = [
        (httpx.ConnectTimeout, "the connection timed out"),
        (httpx.ReadTimeout, "no reply came in time"),
        (httpx.WriteTimeout, "sending timed out"),
        (httpx.PoolTimeout, "no free connection in time"),
        (httpx.ConnectError, "could not connect"),
        (httpx.ReadError, "the connection dropped while receiving"),
        (httpx.WriteError, "the connection dropped while sending"),
        (httpx.RemoteProtocolError, "the server closed the connection unexpectedly"),
        (httpx.ProxyError, "the proxy refused the connection"),
    ]
    text = next((t for kind, t in kinds if isinstance(exc, kind)), "network error")
    raw = safe_text(str(exc), 160)
    return f"{text} ({raw})" if raw else text


def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


async def read_error_reply(response: httpx.Response) -> httpx.Response:
    """Read at most `ERROR_BODY_LIMIT` of an error reply, close it, return a readable copy."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= ERROR_BODY_LIMIT:
                break
    except httpx.DecodingError:
        pass  # a garbled error body is still an error: classify on the status alone
    finally:
        await response.aclose()
    drop = {"content-encoding", "content-length", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in drop]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks)[:ERROR_BODY_LIMIT],
        request=response.request,
        extensions={
            key: value for key, value in response.extensions.items() if key in ("http_version", "reason_phrase")
        },
    )
