"""The simulated Microsoft Entra ID (v2.0 endpoints): MSAL for Python signs in against it unchanged.

Served over HTTPS (MSAL refuses http authorities) on one ``SimServer`` named ``entra``:

    GET  /{tenant}/v2.0/.well-known/openid-configuration   OIDC discovery
    GET  /common/discovery/instance                          instance discovery, in case
    GET  /{tenant}/oauth2/v2.0/authorize                     sign-in page, or form_post at once
    POST /{tenant}/login                                     the sign-in page's own form
    POST /{tenant}/oauth2/v2.0/token                         auth code (PKCE), refresh, device code
    POST /{tenant}/oauth2/v2.0/devicecode                    start a device-code sign-in
    GET|POST /devicelogin                                    the verification page
    POST /_sim/expire-tokens | revoke | require-consent?mode=user|admin|none
         | approve-device-code | expire-device-codes | auto-consent?enabled=0|1;  GET /_sim/state

Access tokens are ``TokenAuthority`` JWTs for Graph: ``aud`` (the Graph resource), ``scp``
(space-separated: the Graph permissions plus ``profile openid email``, as Entra issues them),
``oid``, ``tid``, ``upn``, ``unique_name``, ``name``, ``preferred_username``, ``appid``,
``exp``. The Graph simulator checks them with ``tokens.verify(token)`` and tests ``scp`` words.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from celeste_desktop.sim.entra_pages import (
    BrowserPages,
    ConsentMode,
    DeviceCode,
    EntraState,
    OAuthError,
    RefreshGrant,
    Scopes,
    SimUser,
    message_page,
    missing,
    normal_code,
    s256,
)
from celeste_desktop.sim.faults import FaultPlan
from celeste_desktop.sim.http import Request, Response, Router
from celeste_desktop.sim.tokens import TokenAuthority

DEFAULT_TENANT_ID = "5f1c2a9e-3b7d-4c1e-9a2f-6d8e0b4c7a31"
DEFAULT_CLIENT_ID = "c3a1e0b2-7d4f-4e8a-9b6c-1f2e3d4c5b6a"
DEFAULT_TENANT_DOMAIN = "mysimyacht.onmicrosoft.com"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_PERMISSIONS = ("Files.Read.All", "User.Read", "Sites.Read.All")  # what ".default" grants
_OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
_REFRESH_IDLE_S = 90 * 24 * 3600  # Entra: refresh tokens die after 90 days unused
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"
_NO_STORE = {"cache-control": "no-store, no-cache", "pragma": "no-cache"}

__all__ = [
    "DEFAULT_CLIENT_ID", "DEFAULT_PERMISSIONS", "DEFAULT_TENANT_ID", "DEVICE_CODE_GRANT",
    "GRAPH_AUDIENCE", "EntraSim", "SimUser", "default_users",
]


def default_users(domain: str = DEFAULT_TENANT_DOMAIN) -> list[SimUser]:
    """The demo tenant's people: the yacht's IT officer (the default sign-in) and the captain."""
    return [
        SimUser(f"it.officer@{domain}", "Morgan Reyes", "Morgan", "Reyes", "ETO / IT Officer"),
        SimUser(f"captain@{domain}", "Elena Sørensen", "Elena", "Sørensen", "Captain"),
    ]


class EntraSim:
    """Microsoft Entra ID for one tenant and one public client; ``handler`` is its router.

    The stack sets ``base_url`` (e.g. ``https://127.0.0.1:50123``) once the server has bound.
    ``clock`` times codes and refresh tokens (tests pass an offset clock; JWT times come from
    ``tokens``). ``grant_counts`` counts tokens issued per grant type.
    """

    def __init__(
        self,
        *,
        tokens: TokenAuthority,
        faults: FaultPlan,
        tenant_id: str = DEFAULT_TENANT_ID,
        client_id: str = DEFAULT_CLIENT_ID,
        auto_consent: bool = False,
        graph_audience: str = GRAPH_AUDIENCE,
        users: Sequence[SimUser] | None = None,
        tenant_domain: str = DEFAULT_TENANT_DOMAIN,
        tenant_name: str = "M/Y Sim Yacht",
        app_name: str = "CelesteOS Desktop",
        access_token_lifetime_s: int = 3600,
        device_code_lifetime_s: int = 900,
        device_code_interval_s: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tokens, self.faults = tokens, faults
        self.tenant_id, self.client_id = tenant_id.lower(), client_id
        self.auto_consent = auto_consent
        self.graph_audience = graph_audience.rstrip("/")
        self.users: list[SimUser] = list(users) if users else default_users(tenant_domain)
        self.tenant_domain, self.tenant_name, self.app_name = tenant_domain, tenant_name, app_name
        self.access_token_lifetime_s = access_token_lifetime_s
        self.device_code_lifetime_s = device_code_lifetime_s
        self.device_code_interval_s = device_code_interval_s
        self.clock = clock
        self.base_url = ""
        self.grant_counts: Counter[str] = Counter()
        self.state = EntraState()
        self._lock = self.state.lock
        self._pages = BrowserPages(self)
        self.handler = self._build_router()

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    # -- controls (tests call these directly; /_sim/ endpoints call them over HTTP) ------------

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working at Graph (the authority's clock jumps)."""
        self.tokens.expire_all_now()

    def revoke_refresh_tokens(self, username: str | None = None) -> int:
        """Revoke the refresh tokens of one user (or all); returns how many were revoked."""
        with self._lock:
            grants = [
                g for g in self.state.refresh_tokens.values()
                if not g.revoked and (username is None or _same(g.user.user_principal_name, username))
            ]
            for grant in grants:
                grant.revoked = True
        return len(grants)

    def require_consent(self, mode: ConsentMode | None) -> None:
        """From now on ask for user consent (again) or admin approval; ``None`` lifts it."""
        with self._lock:
            self.state.consent_mode = mode
            self.state.consented.clear()

    def approve_device_code(self, user_code: str | None = None, username: str | None = None) -> None:
        """Approve a pending device code (the newest one when ``user_code`` is None)."""
        user = self.find_user(username) if username else self.users[0]
        if user is None:
            raise LookupError(f"no user {username!r} in the simulated tenant")
        with self._lock:
            pending = [d for d in self.state.device_codes.values() if d.status == "pending"]
            if user_code is not None:
                pending = [d for d in pending if d.user_code == normal_code(user_code)]
            if not pending:
                raise LookupError("no pending device code to approve")
            self.state.approve(pending[-1], user)

    def expire_device_codes(self) -> None:
        with self._lock:
            for device in self.state.device_codes.values():
                device.expires_at = min(device.expires_at, self.clock())

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            return [d.user_code for d in self.state.device_codes.values() if d.status == "pending"]

    # -- routing -----------------------------------------------------------------------------

    def _build_router(self) -> Router:
        router = Router()
        router.add("GET", "/common/discovery/instance", self._instance_discovery)
        router.add("GET", "/{tenant}/v2.0/.well-known/openid-configuration", self._discovery)
        router.add("GET", "/{tenant}/discovery/v2.0/keys", self._keys)
        router.add("GET", "/{tenant}/oauth2/v2.0/authorize", self._pages.authorize)
        router.add("POST", "/{tenant}/login", self._pages.login)
        router.add("GET", "/{tenant}/oauth2/v2.0/logout", self._logout)
        router.add("POST", "/{tenant}/oauth2/v2.0/token", self._token)
        router.add("POST", "/{tenant}/oauth2/v2.0/devicecode", self._devicecode)
        router.add("GET", "/devicelogin", self._pages.devicelogin_page)
        router.add("POST", "/devicelogin", self._pages.devicelogin_submit)
        router.add("POST", "/_sim/{action}", self._control)
        router.add("GET", "/_sim/state", self._control_state)
        return router

    # -- shared with entra_pages ---------------------------------------------------------------

    def public_base(self, request: Request) -> str:
        return self.base_url or f"https://{request.header('host', '127.0.0.1')}"

    def tenant_ok(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id, self.tenant_domain.lower(), "common", "organizations")

    def unknown_tenant(self, tenant: str) -> OAuthError:
        return OAuthError(
            "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you have the "
            "correct tenant ID and are signing into the correct cloud."
        )

    def unknown_client(self, client_id: str) -> OAuthError:
        return OAuthError(
            "unauthorized_client", 700016, f"Application with identifier '{client_id}' was not found "
            f"in the directory '{self.tenant_name}'. This can happen if the application has not been "
            "installed by the administrator of the tenant or consented to by any user in the tenant. "
            "You may have sent your authentication request to the wrong tenant."
        )

    def find_user(self, username: str | None) -> SimUser | None:
        return next((u for u in self.users if username and _same(u.user_principal_name, username)), None)

    # -- discovery ---------------------------------------------------------------------------

    async def _discovery(self, request: Request) -> Response:
        tenant = request.route_params["tenant"]
        if not self.tenant_ok(tenant):
            return Response.json(self.unknown_tenant(tenant).described(), 400)
        base = self.public_base(request)
        multi = tenant.lower() in ("common", "organizations")
        path = f"{base}/{tenant.lower() if multi else self.tenant_id}"
        return Response.json({
            "token_endpoint": f"{path}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "jwks_uri": f"{path}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{'{tenantid}' if multi else self.tenant_id}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{path}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{path}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{path}/oauth2/v2.0/logout",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "oid", "tid",
                                 "preferred_username", "ver"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": urlsplit(self.graph_audience).netloc,
        })

    async def _instance_discovery(self, request: Request) -> Response:
        endpoint = urlsplit(request.query.get("authorization_endpoint", ""))
        tenant = next((part for part in endpoint.path.split("/") if part), "common")
        host = urlsplit(self.public_base(request)).netloc
        return Response.json({
            "tenant_discovery_endpoint":
                f"{self.public_base(request)}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })

    async def _keys(self, request: Request) -> Response:
        return Response.json({"keys": []})  # tokens are HS256 with a per-run secret: nothing to publish

    async def _logout(self, request: Request) -> Response:
        return message_page("You signed out of your account", "You can close this window.")

    def admin_error(self, error: str = "invalid_grant") -> OAuthError:
        return OAuthError(
            error, 90094, f"Admin approval required. {self.app_name} needs permission to "
            "access resources in your organization that only an admin can grant. Please ask an "
            "admin to grant permission to this app before you can use it.", suberror="consent_required"
        )

    def consent_problem(
        self, user: SimUser, *, error: str = "invalid_grant", user_can_consent: bool = False
    ) -> OAuthError | None:
        with self._lock:
            mode, consented = self.state.consent_mode, user.object_id in self.state.consented
        if mode == "admin":
            return self.admin_error(error)
        if mode == "user" and not consented and not user_can_consent:
            return OAuthError(
                error, 65001, "The user or administrator has not consented to use the "
                f"application with ID '{self.client_id}' named '{self.app_name}'. Send an interactive "
                "authorization request for this user and resource.", suberror="consent_required"
            )
        return None

    # -- token endpoint ----------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = await request.form()  # read first: an unread body would close the connection
        correlation = request.header("client-request-id") or str(uuid.uuid4())
        grant_type = form.get("grant_type", "")
        try:
            tenant = request.route_params["tenant"]
            if not self.tenant_ok(tenant):
                raise self.unknown_tenant(tenant)
            self._check_client(form)
            if grant_type == "authorization_code":
                body = self._redeem_code(form)
            elif grant_type == "refresh_token":
                body = self._redeem_refresh_token(form)
            elif grant_type == DEVICE_CODE_GRANT:
                body = self._redeem_device_code(form)
            elif not grant_type:
                raise missing("grant_type")
            else:
                raise OAuthError("unsupported_grant_type", 70003,
                                 f"The app requested an unsupported grant type '{grant_type}'.")
        except OAuthError as exc:
            return Response.json(exc.described(correlation), 400, {**_NO_STORE})
        with self._lock:
            self.grant_counts[grant_type] += 1
        headers = {**_NO_STORE, "client-request-id": correlation, "x-ms-request-id": str(uuid.uuid4())}
        return Response.json(body, headers=headers)

    def _check_client(self, form: Mapping[str, str]) -> None:
        client_id = form.get("client_id", "")
        if not client_id:
            raise missing("client_id")
        if client_id != self.client_id:
            raise self.unknown_client(client_id)

    def _redeem_code(self, form: Mapping[str, str]) -> dict[str, Any]:
        code_text = form.get("code") or ""
        if not code_text:
            raise missing("code")
        with self._lock:
            code = self.state.codes.get(code_text)
            first_use = code is not None and not code.redeemed
            if code is not None:
                code.redeemed = True  # single use, even when this attempt fails
        if code is None:
            raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if not first_use:
            raise OAuthError("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, "
                             "please retry with a new valid code or use an existing refresh token.")
        if self.clock() >= code.expires_at:
            raise OAuthError("invalid_grant", 70008, "The provided authorization code or refresh token "
                             "has expired due to inactivity. Send a new interactive authorization "
                             "request for this user and resource.")
        if form.get("redirect_uri") != code.request.redirect_uri:
            raise OAuthError("invalid_grant", 50011, "The redirect URI in the token request does not "
                             "match the one used in the authorization request.")
        verifier = form.get("code_verifier") or ""
        if not verifier:
            raise missing("code_verifier")
        if s256(verifier) != code.request.code_challenge:
            raise OAuthError("invalid_grant", 501481, "The Code_Verifier does not match the "
                             "code_challenge supplied in the authorization request.")
        return self._issue(code.user, code.request.scopes, nonce=code.request.nonce,
                           client_info=form.get("client_info") == "1")

    def _redeem_refresh_token(self, form: Mapping[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token") or ""
        if not token:
            raise missing("refresh_token")
        with self._lock:
            grant = self.state.refresh_tokens.get(token)
        if grant is None or grant.client_id != form.get("client_id"):
            raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        now = self.clock()
        if grant.revoked or now - grant.last_used_at > _REFRESH_IDLE_S:
            issued = datetime.fromtimestamp(grant.issued_at, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
            raise OAuthError("invalid_grant", 700082, "The refresh token has expired due to inactivity. "
                             f"The token was issued on {issued} and was inactive for 90.00:00:00.")
        problem = self.consent_problem(grant.user)
        if problem is not None:
            raise problem
        scopes = self.parse_scopes(form["scope"]) if form.get("scope") else grant.scopes
        with self._lock:
            grant.last_used_at = now  # the old token stays valid until idle, as in Entra
        # A refresh always hands out a new refresh token, whatever the scope asked for.
        scopes = Scopes(scopes.resource, scopes.oidc | {"offline_access"})
        return self._issue(grant.user, scopes, nonce=None, client_info=form.get("client_info") == "1")

    def _issue(self, user: SimUser, scopes: Scopes, *, nonce: str | None, client_info: bool) -> dict[str, Any]:
        lifetime = self.faults.token_lifetime or self.access_token_lifetime_s
        scope_text = " ".join(scopes.granted)
        common = {"oid": user.object_id, "tid": self.tenant_id, "name": user.display_name,
                  "sub": _pairwise(user, self.client_id), "uti": secrets.token_urlsafe(16)}
        access_token = self.tokens.mint({
            **common, "aud": self.graph_audience, "scp": scope_text, "appid": self.client_id,
            "app_displayname": self.app_name, "idtyp": "user", "upn": user.user_principal_name,
            "unique_name": user.user_principal_name, "preferred_username": user.user_principal_name,
            "given_name": user.given_name, "family_name": user.surname, "ver": "1.0",
        }, lifetime_s=lifetime)
        body: dict[str, Any] = {
            "token_type": "Bearer", "scope": scope_text, "expires_in": lifetime,
            "ext_expires_in": lifetime, "access_token": access_token,
        }
        if "offline_access" in scopes.oidc:
            refresh_token = f"1.A{secrets.token_urlsafe(160)}"  # opaque, as Entra's are
            now = self.clock()
            with self._lock:
                self.state.refresh_tokens[refresh_token] = RefreshGrant(
                    self.client_id, user, scopes, now, now)
            body["refresh_token"] = refresh_token
        if "openid" in scopes.oidc:
            id_claims = {**common, "aud": self.client_id, "iss": self._issuer(),
                         "preferred_username": user.user_principal_name, "ver": "2.0"}
            if nonce:
                id_claims["nonce"] = nonce
            body["id_token"] = self.tokens.mint(id_claims, lifetime_s=3600)
        if client_info:
            body["client_info"] = self.client_info(user)
        return body

    def _issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    def client_info(self, user: SimUser) -> str:
        raw = json.dumps({"uid": user.object_id, "utid": self.tenant_id}).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def parse_scopes(self, text: str) -> Scopes:
        resource: list[str] = []
        oidc: set[str] = set()
        prefix = f"{self.graph_audience}/".lower()
        for raw in text.split():
            if raw.lower() in _OIDC_SCOPES:
                oidc.add(raw.lower())
                continue
            name = raw[len(prefix):] if raw.lower().startswith(prefix) else raw
            if not name or "/" in name or ":" in name:
                raise OAuthError("invalid_scope", 70011, "The provided value for the input parameter "
                                 f"'scope' is not valid. The scope '{raw}' is not valid.")
            for permission in DEFAULT_PERMISSIONS if name == ".default" else (name,):
                if permission.lower() not in (r.lower() for r in resource):
                    resource.append(permission)
        return Scopes(tuple(resource or ["User.Read"]), frozenset(oidc))

    # -- device code flow --------------------------------------------------------------------

    async def _devicecode(self, request: Request) -> Response:
        form = await request.form()
        correlation = request.header("client-request-id") or str(uuid.uuid4())
        try:
            tenant = request.route_params["tenant"]
            if not self.tenant_ok(tenant):
                raise self.unknown_tenant(tenant)
            self._check_client(form)
            scopes = self.parse_scopes(form.get("scope", ""))
        except OAuthError as exc:
            return Response.json(exc.described(correlation), 400, {**_NO_STORE})
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        device = DeviceCode(f"DAQABAAEAAAD{secrets.token_urlsafe(96)}", user_code, scopes,
                            self.clock() + self.device_code_lifetime_s, self.device_code_interval_s)
        with self._lock:
            self.state.device_codes[device.device_code] = device
        uri = f"{self.public_base(request)}/devicelogin"
        return Response.json({
            "user_code": user_code, "device_code": device.device_code, "verification_uri": uri,
            "expires_in": self.device_code_lifetime_s, "interval": device.interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
            f"{user_code} to authenticate.",
        }, headers={**_NO_STORE})

    def _redeem_device_code(self, form: Mapping[str, str]) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            device = self.state.device_codes.get(form.get("device_code") or "")
            if device is None:
                raise OAuthError("invalid_grant", 70000, "The provided value for the input parameter "
                                 "'device_code' is not valid.")
            if now >= device.expires_at:
                raise OAuthError("expired_token", 70019, "Verification code expired.")
            if device.status == "redeemed":
                raise OAuthError("invalid_grant", 54005, "The device code was already redeemed.")
            too_soon = device.last_poll is not None and now - device.last_poll < device.interval * 0.8
            device.last_poll = now
            if too_soon:
                device.interval += 5  # RFC 8628 3.5: the client must add 5 s; so do we
                raise OAuthError("slow_down", 70016, "OAuth 2.0 device flow error. Polling too often: "
                                 f"wait {device.interval} seconds between requests.")
            device.polls += 1
            if device.status == "pending" and self.auto_consent and device.polls >= 2:
                self.state.approve(device, self.users[0])
            if device.status == "declined":
                raise OAuthError("authorization_declined", 70000, "The user declined the sign-in.")
            if device.status == "pending" or device.user is None:
                raise OAuthError("authorization_pending", 70016, "OAuth 2.0 device flow error. "
                                 "Authorization is pending. Continue polling.")
            user = device.user
        problem = self.consent_problem(user)
        if problem is not None:
            raise problem
        with self._lock:
            device.status = "redeemed"
        return self._issue(user, device.scopes, nonce=None, client_info=form.get("client_info") == "1")

    # -- /_sim/ control endpoints --------------------------------------------------------------

    async def _control(self, request: Request) -> Response:
        await request.read()
        action, query = request.route_params["action"], request.query
        try:
            if action == "expire-tokens":
                self.expire_access_tokens()
            elif action == "revoke":
                return Response.json({"revoked": self.revoke_refresh_tokens(query.get("user"))})
            elif action == "require-consent":
                modes: dict[str, ConsentMode | None] = {"user": "user", "admin": "admin", "none": None}
                mode = query.get("mode", "user")
                if mode not in modes:
                    return Response.json({"error": "mode must be user, admin or none"}, 400)
                self.require_consent(modes[mode])
            elif action == "approve-device-code":
                self.approve_device_code(query.get("user_code"), query.get("user"))
            elif action == "expire-device-codes":
                self.expire_device_codes()
            elif action == "auto-consent":
                self.auto_consent = query.get("enabled", "1").lower() in ("1", "true", "yes")
            else:
                return Response.json({"error": f"unknown control {action!r}"}, 404)
        except LookupError as exc:
            return Response.json({"error": str(exc)}, 409)
        return Response(status=204)

    async def _control_state(self, request: Request) -> Response:
        with self._lock:
            state = self.state
            return Response.json({
                "auto_consent": self.auto_consent, "consent_mode": state.consent_mode,
                "grant_counts": dict(self.grant_counts),
                "pending_user_codes": [d.user_code for d in state.device_codes.values()
                                       if d.status == "pending"],
                "refresh_tokens": len(state.refresh_tokens),
                "users": [u.user_principal_name for u in self.users],
            })


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _pairwise(user: SimUser, client_id: str) -> str:
    digest = hashlib.sha256(f"{user.object_id}:{client_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
