"""MSAL's answers turned into the app's errors, each with what went wrong and what to do next.

MSAL reports protocol failures as dicts (``error``, ``error_description``, ``error_codes``,
``suberror``) and transport failures as ``requests`` exceptions. Messages quote at most the
first sentence of Entra's description (never trace ids, tokens, codes or query strings).

    AADSTS65001, 90094, 90095, suberror consent_required  → AdminConsentRequired (a ConsentRequired)
    AADSTS700016 (unknown application)                    → ConfigError("client_id")
    AADSTS90002 (unknown tenant), failed OIDC discovery   → ConfigError("tenant")
    access_denied, authorization_declined, expired_token  → SignInCancelled
    invalid_grant (AADSTS700082 …), interaction_required  → SignInRequired
    network, TLS, proxy, 5xx                              → ServiceUnavailable
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from celeste_desktop.domain.errors import (
    AuthError,
    CelesteError,
    ConfigError,
    ConsentRequired,
    ServiceUnavailable,
    SignInCancelled,
    SignInRequired,
)
from celeste_desktop.net.replies import certificate_error, safe_text

__all__ = [
    "RETRYABLE_CODES",
    "AdminConsentRequired",
    "ErrorContext",
    "aadsts_codes",
    "admin_consent_url",
    "authority_error",
    "error_from_result",
    "network_error",
]

_CONSENT_CODES = frozenset({65001, 90094, 90095, 90099})
_DECLINED_CODES = frozenset({65004})
_UNKNOWN_CLIENT_CODES = frozenset({700016, 7000215})
_UNKNOWN_TENANT_CODES = frozenset({90002, 900023, 90033})
# ``ServiceUnavailable.code`` values of failures that pass by themselves (a retry may succeed).
UNREACHABLE = "unreachable"
SERVER_ERROR = "server_error"
RETRYABLE_CODES = frozenset({UNREACHABLE, SERVER_ERROR})
_AADSTS = re.compile(r"AADSTS(\d+)")
_TRAILER = re.compile(r"\s+(Trace ID|Correlation ID|Timestamp):.*$", re.DOTALL)


class AdminConsentRequired(ConsentRequired):
    """A tenant administrator must approve the app; carries what to send them."""

    def __init__(self, message: str, *, admin_consent_url: str, permissions: tuple[str, ...]) -> None:
        super().__init__(message)
        self.admin_consent_url = admin_consent_url
        self.permissions = permissions


@dataclass(frozen=True)
class ErrorContext:
    """What the messages name: the sign-in host, tenant, client id and requested permissions."""

    authority: str  # e.g. https://login.microsoftonline.com (no tenant)
    tenant: str
    client_id: str
    permissions: tuple[str, ...]

    @property
    def host(self) -> str:
        return urlsplit(self.authority).netloc or self.authority


def admin_consent_url(authority: str, tenant: str, client_id: str) -> str:
    """The page where a tenant administrator approves the app for everyone in the tenant."""
    return f"{authority.rstrip('/')}/{quote(tenant, safe='')}/adminconsent?client_id={quote(client_id, safe='')}"


def aadsts_codes(result: Mapping[str, Any]) -> set[int]:
    """The AADSTS numbers of an MSAL error dict, from ``error_codes`` and the description."""
    codes = {code for code in result.get("error_codes") or [] if isinstance(code, int)}
    description = result.get("error_description")
    if isinstance(description, str):
        codes |= {int(number) for number in _AADSTS.findall(description)}
    return codes


def _detail(result: Mapping[str, Any]) -> str:
    """Entra's own words without the trace/correlation trailer, fit for a person."""
    description = result.get("error_description")
    text = description if isinstance(description, str) and description.strip() else str(result.get("error", ""))
    return safe_text(_TRAILER.sub("", text), 240)


def error_from_result(result: Mapping[str, Any], context: ErrorContext, *, during: str) -> CelesteError:
    """The domain error for an MSAL error dict; ``during`` says what was being done."""
    codes = aadsts_codes(result)
    error = str(result.get("error") or "")
    detail = _detail(result)
    if codes & _CONSENT_CODES or result.get("suberror") == "consent_required" or error == "consent_required":
        return consent_error(context, detail)
    if codes & _UNKNOWN_CLIENT_CODES or error == "unauthorized_client":
        return ConfigError(
            "client_id",
            f"Microsoft 365 does not know the application (client) id {context.client_id} "
            f"in tenant {context.tenant} ({detail}). Copy the Application (client) id from the app "
            "registration in the Microsoft Entra admin center, and check the tenant setting.",
            title="Application id not recognised",
        )
    if codes & _UNKNOWN_TENANT_CODES or error == "invalid_tenant":
        return _tenant_error(context, detail)
    if error in ("access_denied", "authorization_declined") or codes & _DECLINED_CODES:
        return SignInCancelled("The sign-in was cancelled or declined. Connect again when you are ready.")
    if error in ("expired_token", "bad_verification_code") or 70019 in codes:
        return SignInCancelled(
            "The sign-in code expired before the sign-in was finished. Connect again to get a new code."
        )
    if error in ("invalid_grant", "interaction_required", "login_required"):
        return SignInRequired(
            "The saved Microsoft 365 sign-in has expired or was revoked (a password change, an "
            "administrator, or 90 days without use end it). Sign in again; syncing continues "
            f"where it stopped. ({detail})"
        )
    if error in ("temporarily_unavailable", "server_error"):
        return ServiceUnavailable(
            f"Microsoft sign-in ({context.host}) is temporarily unavailable during {during} ({detail}). "
            "Try again in a few minutes.",
            service="entra",
            code=SERVER_ERROR,
        )
    return AuthError(
        f"Microsoft sign-in failed during {during}: {detail}. Try again; if it keeps failing, "
        "export diagnostics for support."
    )


def consent_error(context: ErrorContext, detail: str | None = None) -> AdminConsentRequired:
    url = admin_consent_url(context.authority, context.tenant, context.client_id)
    names = ", ".join(context.permissions)
    why = f" ({detail})" if detail else ""
    return AdminConsentRequired(
        "A tenant administrator must approve CelesteOS Desktop before it can read documents"
        f"{why}. Send your Microsoft 365 administrator this approval link: {url} — it grants the "
        f"delegated, read-only permissions {names} to application {context.client_id}. "
        "Once approved, connect again.",
        admin_consent_url=url,
        permissions=context.permissions,
    )


def _tenant_error(context: ErrorContext, detail: str | None) -> ConfigError:
    why = f" ({detail})" if detail else ""
    return ConfigError(
        "tenant",
        f"Microsoft sign-in at {context.host} does not know the tenant {context.tenant!r}{why}. Give "
        "the tenant id (a UUID), a domain such as contoso.onmicrosoft.com, or organizations, and "
        "check that the cloud (global, US Government, China) is the tenant's.",
        title="Tenant not found",
    )


def authority_error(exc: ValueError, context: ErrorContext) -> ConfigError:
    """MSAL's ValueError while setting up the authority: a bad tenant or a bad sign-in host."""
    text = str(exc)
    if "Unable to get authority configuration" in text or "OIDC Discovery" in text:
        return _tenant_error(context, None)
    return ConfigError(
        "authority",
        f"{context.authority} is not a usable Microsoft sign-in address. Choose a cloud preset, or "
        "give the sign-in host as https://login.microsoftonline.com (or your cloud's).",
        title="Sign-in address not usable",
    )


def network_error(exc: requests.RequestException, context: ErrorContext) -> ServiceUnavailable:
    """A transport failure talking to Microsoft sign-in, explained without URLs' secrets."""
    host = context.host
    if isinstance(exc, requests.exceptions.SSLError):
        certificate = certificate_error(exc)
        reason = safe_text(certificate.verify_message or str(certificate)) if certificate else "TLS failed"
        return ServiceUnavailable(
            f"Microsoft sign-in ({host}) could not be reached securely: its certificate is not "
            f"trusted ({reason}). If the vessel's network or a company proxy inspects HTTPS, add "
            "its CA certificate in Settings → Network.",
            service="entra",
            code="certificate",
            title="Secure connection failed",
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return ServiceUnavailable(
            f"The proxy refused the connection to Microsoft sign-in ({host}). Check the proxy in Settings → Network.",
            service="entra",
            code="proxy",
        )
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        return ServiceUnavailable(
            f"Microsoft sign-in ({host}) answered HTTP {status}. It is probably a passing problem: "
            "try again in a few minutes.",
            status=status,
            service="entra",
            code=SERVER_ERROR,
        )
    reason = "no reply came in time" if isinstance(exc, requests.exceptions.Timeout) else "could not connect"
    return ServiceUnavailable(
        f"Microsoft sign-in ({host}) could not be reached: {reason}. Check the vessel's internet "
        "link; the app tries again by itself.",
        service="entra",
        code=UNREACHABLE,
    )
