"""``MsalSession``: the one MSAL client behind every sign-in and token, its cache kept in the vault.

Every MSAL call that reads or changes the token cache runs under one lock, with the cache
reloaded from the vault first and saved after (when MSAL changed it), so the window and a
scheduled CLI run sharing the vault see each other's sign-ins instead of overwriting them.

The blocking methods here run in worker threads (``asyncio.to_thread``). The MSAL app and its
HTTP session are built in ``auth.msal_app``, the sign-in flows are in ``auth.flows`` and the
Graph ``httpx.Auth`` in ``auth.graph_auth``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import msal
import requests

from celeste_desktop.auth.errors import ErrorContext, error_from_result, network_error
from celeste_desktop.auth.msal_app import build_public_client, http_options_for, make_http_session, scopes_for
from celeste_desktop.auth.vault import MsalCacheStore, Vault
from celeste_desktop.config.settings import Settings
from celeste_desktop.domain.errors import AuthError, SignInRequired, VaultError

if TYPE_CHECKING:
    from celeste_desktop.auth.flows import CancelToken, DeviceCodePrompt

# http_options_for is re-exported: the composition root builds the Graph client from it.
__all__ = ["AccessToken", "Account", "MsalSession", "http_options_for"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_PENDING = ("authorization_pending", "slow_down")
_CredentialType = msal.TokenCache.CredentialType


@dataclass(frozen=True)
class Account:
    """The signed-in Microsoft 365 account, as shown to people."""

    username: str  # the user principal name
    tenant_id: str
    home_account_id: str
    display_name: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"username": self.username, "tenant_id": self.tenant_id, "display_name": self.display_name}


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_on: float  # seconds since the epoch


def _jwt_claims(token: str) -> dict[str, Any]:
    """Claims of a token we already trust (it came from our own cache); never verifies."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def _looks_like_jwt(value: str) -> bool:
    return value.startswith("eyJ") and value.count(".") == 2


class MsalSession:
    """One MSAL public client for the current settings, its cache shared through the vault.

    ``on_secret`` (e.g. ``Redactor.add_secret``) is told every opaque token MSAL holds, so a
    refresh token that reaches a log line by any path is still scrubbed; JWTs are scrubbed by
    pattern already.
    """

    def __init__(
        self,
        settings: Settings,
        vault: Vault,
        *,
        http: requests.Session | None = None,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.scopes = scopes_for(settings)
        self._vault = vault
        self._store = MsalCacheStore(vault)
        self._http = http
        self._on_secret = on_secret
        self._cache = msal.SerializableTokenCache()
        self._app: Any = None  # msal.PublicClientApplication, built on first use (it does I/O)
        self._lock = threading.RLock()
        self._epoch = 0
        self._tenant_seen: str | None = None

    def __repr__(self) -> str:
        return f"MsalSession(authority={self.settings.authority_url!r}, client_id={self.settings.client_id!r})"

    @property
    def epoch(self) -> int:
        """Bumped by every sign-in and sign-out, so holders of a token know to drop it."""
        return self._epoch

    def error_context(self) -> ErrorContext:
        return ErrorContext(
            authority=self.settings.effective_authority,
            tenant=self._tenant_seen or self.settings.tenant,
            client_id=self.settings.client_id,
            permissions=self.scopes,
        )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # -- public, blocking (call through asyncio.to_thread) ---------------------------------------

    def current_account(self) -> Account | None:
        """The account in the saved sign-in, or None; no network. Raises VaultError when unreadable."""
        with self._lock:
            self._reload(tolerate_unreadable=False)
            return self._account_in_cache()

    def acquire_silent(self, *, force_refresh: bool = False) -> AccessToken:
        """An access token from the cache, refreshed through the refresh token when needed."""

        def silent(app: Any) -> AccessToken:
            accounts = app.get_accounts()
            if not accounts:
                raise SignInRequired(
                    "No Microsoft 365 account is signed in on this PC. Connect in the window, or run "
                    "`celeste-desktop login`."
                )
            account = accounts[0]
            self._tenant_seen = account.get("realm") or self._tenant_seen
            result = app.acquire_token_silent_with_error(
                list(self.scopes), account=account, force_refresh=force_refresh
            )
            if result is None:  # no refresh token left for this account
                raise SignInRequired("The saved Microsoft 365 sign-in has no usable token left. Sign in again.")
            if "access_token" not in result:
                raise error_from_result(result, self.error_context(), during="token refresh")
            return self._token_from(result)

        return self._locked(silent)

    def sign_out(self) -> None:
        """Forget every account and token, in memory and on disk, and wipe the vault (Disconnect).

        Needs no network: clearing the whole cache is what MSAL's ``remove_account`` does for
        each account, and the vault's wipe then removes the file and its key.
        """
        with self._lock:
            self._cache.deserialize(None)
            self._vault.wipe()
            self._epoch += 1
        log.info("signed out of Microsoft 365; saved sign-in wiped")

    # -- sign-in steps used by auth.flows ---------------------------------------------------------

    def begin_auth_code_flow(self, redirect_uri: str, login_hint: str | None = None) -> dict[str, Any]:
        """MSAL's authorization request (PKCE, state, nonce) for the loopback ``redirect_uri``."""

        def begin(app: Any) -> dict[str, Any]:
            flow: dict[str, Any] = app.initiate_auth_code_flow(
                list(self.scopes),
                redirect_uri=redirect_uri,
                login_hint=login_hint,
                prompt=None if login_hint else msal.Prompt.SELECT_ACCOUNT,
                response_mode="form_post",
            )
            return flow

        return self._locked(begin, fresh_start=True)

    def complete_auth_code_flow(self, flow: dict[str, Any], answer: Mapping[str, str]) -> Account:
        """Redeem the browser's answer; MSAL checks state, PKCE and the id token's nonce."""

        # MSAL's DEBUG log of the redemption shows the (single-use) authorization code.
        self._note(answer.get("code"))

        def complete(app: Any) -> Account:
            try:
                result = app.acquire_token_by_auth_code_flow(flow, dict(answer), scopes=list(self.scopes))
            except ValueError:  # MSAL's word for a state mismatch or a malformed answer
                raise AuthError("The answer from the browser did not match this sign-in. Connect again.") from None
            return self._finish_sign_in(app, result, during="browser sign-in")

        return self._locked(complete, fresh_start=True)

    def begin_device_flow(self) -> dict[str, Any]:
        def begin(app: Any) -> dict[str, Any]:
            flow: dict[str, Any] = app.initiate_device_flow(scopes=list(self.scopes))
            if "user_code" not in flow:
                raise error_from_result(flow, self.error_context(), during="device code sign-in")
            # MSAL's one-step poll loops without pausing when the interval is 0.
            flow["interval"] = max(1, int(flow.get("interval", 5)))
            return flow

        return self._locked(begin, fresh_start=True)

    def poll_device_flow(self, flow: dict[str, Any]) -> Account | None:
        """Ask once whether the code was used: the account, or None while still pending."""

        def poll(app: Any) -> Account | None:
            # exit_condition makes MSAL poll once and return, so waiting (and Cancel) stay ours.
            result = app.acquire_token_by_device_flow(flow, exit_condition=lambda _flow: True)
            if result.get("error") in _PENDING:
                return None
            return self._finish_sign_in(app, result, during="device code sign-in")

        return self._locked(poll, fresh_start=True)

    async def sign_in_interactive(
        self,
        *,
        cancel: CancelToken | None = None,
        browser_timeout: float = 300.0,
        login_hint: str | None = None,
        open_browser: Callable[[str], bool] | None = None,
        on_browser_failed: Callable[[str], None] | None = None,
    ) -> Account:
        """Sign in in the system browser; see ``auth.flows.sign_in_interactive``."""
        from celeste_desktop.auth.flows import sign_in_interactive

        return await sign_in_interactive(
            self,
            cancel=cancel,
            browser_timeout=browser_timeout,
            login_hint=login_hint,
            open_browser=open_browser,
            on_browser_failed=on_browser_failed,
        )

    async def sign_in_with_device_code(
        self, on_code: Callable[[DeviceCodePrompt], None], *, cancel: CancelToken | None = None
    ) -> Account:
        """Sign in with a code entered on another device; see ``auth.flows.sign_in_with_device_code``."""
        from celeste_desktop.auth.flows import sign_in_with_device_code

        return await sign_in_with_device_code(self, on_code, cancel=cancel)

    # -- internals ----------------------------------------------------------------------------------

    def _locked(self, operation: Callable[[Any], T], *, fresh_start: bool = False) -> T:
        """Run ``operation(app)`` with the cache reloaded before and saved after, under the lock."""
        with self._lock:
            self._reload(tolerate_unreadable=fresh_start)
            app = self._application()
            try:
                return operation(app)
            except requests.RequestException as exc:
                raise network_error(exc, self.error_context()) from None
            finally:
                self._persist()

    def _reload(self, *, tolerate_unreadable: bool) -> None:
        try:
            loaded = self._store.load()
        except VaultError as problem:
            if not tolerate_unreadable:
                raise
            # The vault has moved the unreadable file aside; a sign-in starts from nothing.
            log.warning("saved sign-in unreadable, starting afresh: %s", problem.message)
            loaded = msal.SerializableTokenCache()
        self._cache.deserialize(loaded.serialize())
        self._note_cached_secrets()

    def _persist(self) -> None:
        if self._store.save(self._cache):
            self._note_cached_secrets()

    def _application(self) -> Any:
        if self._app is None:
            if self._http is None:
                self._http = make_http_session(self.settings)
            self._app = build_public_client(self.settings, self._cache, self._http, self.error_context())
        return self._app

    def _finish_sign_in(self, app: Any, result: Mapping[str, Any], *, during: str) -> Account:
        if "access_token" not in result:
            raise error_from_result(result, self.error_context(), during=during)
        self._note_result_secrets(result)
        claims = result.get("id_token_claims") or {}
        keep = f"{claims.get('oid')}.{claims.get('tid')}" if claims.get("oid") and claims.get("tid") else None
        if keep is not None:
            # One connection per install: an earlier account on this PC is forgotten.
            for other in app.get_accounts():
                if other.get("home_account_id") != keep:
                    app.remove_account(other)
        self._epoch += 1
        account = self._account_in_cache(prefer=keep)
        if account is None:
            raise AuthError("Microsoft 365 signed you in but did not say which account. Connect again.")
        self._tenant_seen = account.tenant_id
        log.info("signed in to Microsoft 365 as %s (tenant %s)", account.username, account.tenant_id)
        return account

    def _account_in_cache(self, prefer: str | None = None) -> Account | None:
        # MSAL records the authority's host name (without port) as the account's environment.
        host = (urlsplit(self.settings.effective_authority).hostname or "").lower()
        entries = [
            entry
            for entry in self._cache.search(_CredentialType.ACCOUNT)
            if not host or str(entry.get("environment", "")).lower() == host
        ]
        if not entries:
            return None
        entry = next((e for e in entries if e.get("home_account_id") == prefer), entries[0])
        home = str(entry.get("home_account_id", ""))
        name: str | None = None
        for id_token in self._cache.search(_CredentialType.ID_TOKEN, query={"home_account_id": home}):
            claims = _jwt_claims(str(id_token.get("secret", "")))
            if isinstance(claims.get("name"), str):
                name = claims["name"]
                break
        return Account(
            username=str(entry.get("username", "")),
            tenant_id=str(entry.get("realm", "")),
            home_account_id=home,
            display_name=name,
        )

    def _token_from(self, result: Mapping[str, Any]) -> AccessToken:
        self._note_result_secrets(result)
        lifetime = int(result.get("expires_in") or 0)
        return AccessToken(value=str(result["access_token"]), expires_on=time.time() + lifetime)

    def _note(self, value: object) -> None:
        if self._on_secret is not None and isinstance(value, str) and value and not _looks_like_jwt(value):
            self._on_secret(value)

    def _note_result_secrets(self, result: Mapping[str, Any]) -> None:
        for name in ("access_token", "refresh_token", "id_token"):
            self._note(result.get(name))

    def _note_cached_secrets(self) -> None:
        if self._on_secret is None:
            return
        for entry in self._cache.search(_CredentialType.REFRESH_TOKEN):
            self._note(entry.get("secret"))
