"""The browser side of the simulated Entra ID, and the records it shares with ``entra.py``.

Sign-in and consent page, the form_post answer to the app's loopback listener, the device-code
verification page. Plain pages a person can use in demo mode and a test can parse; each says
plainly that it is a simulation, so nobody types a real password into it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit

from celeste_desktop.sim.http import Request, Response

if TYPE_CHECKING:
    from celeste_desktop.sim.entra import EntraSim

ConsentMode = Literal["user", "admin"]
CODE_LIFETIME_S = 600  # Entra: authorization codes live about ten minutes


@dataclass(frozen=True)
class SimUser:
    """A person in the simulated tenant; ``object_id`` is derived from the UPN when not given."""

    user_principal_name: str
    display_name: str
    given_name: str = ""
    surname: str = ""
    job_title: str = ""
    object_id: str = ""

    def __post_init__(self) -> None:
        if not self.object_id:
            oid = uuid.uuid5(uuid.NAMESPACE_URL, f"celeste-sim-user:{self.user_principal_name.lower()}")
            object.__setattr__(self, "object_id", str(oid))


class OAuthError(Exception):
    """An error answer in Entra's shape; ``code`` is the AADSTS number."""

    def __init__(self, error: str, code: int, message: str, *, suberror: str | None = None) -> None:
        super().__init__(message)
        self.error, self.code, self.message, self.suberror = error, code, message, suberror

    def described(self, correlation_id: str | None = None) -> dict[str, Any]:
        correlation_id = correlation_id or str(uuid.uuid4())
        trace_id = str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.message} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {stamp}",
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        if self.suberror:
            body["suberror"] = self.suberror
        return body


def missing(name: str) -> OAuthError:
    return OAuthError(
        "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
    )


@dataclass(frozen=True)
class Scopes:
    resource: tuple[str, ...]  # Graph permissions, short form: "Files.Read.All"
    oidc: frozenset[str]

    @property
    def granted(self) -> list[str]:
        """What Entra reports back (``scope`` and ``scp``): permissions, then the OIDC scopes."""
        extra = [s for s in ("profile", "openid") if s in self.oidc]
        return [*self.resource, *extra, *(["email"] if "openid" in self.oidc else [])]


@dataclass
class AuthRequest:
    redirect_uri: str
    response_mode: str
    state: str
    nonce: str | None
    code_challenge: str
    want_client_info: bool
    login_hint: str | None
    created_at: float
    scopes: Scopes = Scopes((), frozenset())


@dataclass
class AuthCode:
    request: AuthRequest
    user: SimUser
    expires_at: float
    redeemed: bool = False


@dataclass
class RefreshGrant:
    client_id: str
    user: SimUser
    scopes: Scopes
    issued_at: float
    last_used_at: float
    revoked: bool = False


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    scopes: Scopes
    expires_at: float
    interval: int
    last_poll: float | None = None
    polls: int = 0
    status: str = "pending"  # pending, approved, declined, redeemed
    user: SimUser | None = None


@dataclass
class EntraState:
    """Everything the simulator remembers; guard every read and write with ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    auth_requests: dict[str, AuthRequest] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)
    device_codes: dict[str, DeviceCode] = field(default_factory=dict)
    consented: set[str] = field(default_factory=set)  # object ids that consented (mode "user")
    consent_mode: ConsentMode | None = None

    def approve(self, device: DeviceCode, user: SimUser) -> None:
        """Approving a device code is the user's consent too. The caller holds ``lock``."""
        device.status, device.user = "approved", user
        self.consented.add(user.object_id)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normal_code(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def loopback_redirect(uri: str) -> bool:
    """A desktop app's registered ``http://localhost``: any port, a loopback host, no path."""
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    return (parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")
            and parts.path in ("", "/") and not parts.query and not parts.fragment)


def _error_fields(exc: OAuthError, *, cancel: bool = False) -> dict[str, str]:
    body = exc.described()
    fields = {"error": exc.error, "error_description": body["error_description"]}
    if cancel:
        fields["error_subcode"] = "cancel"
    return fields


def _deliver(auth: AuthRequest, fields: Mapping[str, str]) -> Response:
    """Send the authorization response to the redirect URI the way the request asked for."""
    answer = {**fields, "state": auth.state} if auth.state else dict(fields)
    if auth.response_mode == "form_post":
        return Response.html(_form_post_page(auth.redirect_uri, answer))
    sep = "&" if "?" in auth.redirect_uri else "?"
    return Response(status=302, headers={"location": f"{auth.redirect_uri}{sep}{urlencode(answer)}"})


def _error_page(exc: OAuthError) -> Response:
    """Entra's own error page: shown when it cannot trust the client or its redirect URI."""
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f"<p class='error' id='error'>{escape(exc.described()['error_description'])}</p>"
    )
    return Response.html(_page("Sign in to your account", body), 400)


class BrowserPages:
    """The authorize endpoint, the sign-in form and the device-code page of one ``EntraSim``."""

    def __init__(self, sim: EntraSim) -> None:
        self.sim = sim
        self.state = sim.state

    async def authorize(self, request: Request) -> Response:
        sim, params, tenant = self.sim, request.query, request.route_params["tenant"]
        if not sim.tenant_ok(tenant):
            return _error_page(sim.unknown_tenant(tenant))
        client_id = params.get("client_id", "")
        if client_id != sim.client_id:
            return _error_page(sim.unknown_client(client_id))
        redirect_uri = params.get("redirect_uri", "")
        if not loopback_redirect(redirect_uri):
            return _error_page(OAuthError(
                "invalid_request", 50011, f"The redirect URI '{redirect_uri}' specified in the request "
                f"does not match the redirect URIs configured for the application '{client_id}'."))
        auth = AuthRequest(
            redirect_uri, params.get("response_mode") or "query", params.get("state", ""),
            params.get("nonce"), params.get("code_challenge", ""), params.get("client_info") == "1",
            params.get("login_hint"), sim.clock(),
        )
        try:
            auth.scopes = self._checked_scopes(params)
        except OAuthError as exc:
            return _deliver(auth, _error_fields(exc))
        hinted = sim.find_user(auth.login_hint)
        if params.get("prompt") == "none":  # no session cookies here: the hinted user is "signed in"
            if auth.login_hint and hinted is None:
                return _deliver(auth, _error_fields(OAuthError(
                    "login_required", 50058, "A silent sign-in request was sent but none of the "
                    "currently signed in user(s) match the requested login hint.")))
            return self._complete(auth, hinted or sim.users[0], accept=True, silent=True)
        if sim.auto_consent:
            return self._complete(auth, hinted or sim.users[0], accept=True)
        request_id = secrets.token_urlsafe(24)
        with self.state.lock:
            pending = self.state.auth_requests
            for key in [k for k, v in pending.items() if auth.created_at - v.created_at > 3600]:
                del pending[key]
            pending[request_id] = auth
        note = f"There is no account {auth.login_hint} here." if auth.login_hint and not hinted else None
        return self._signin_page(request, request_id, auth, note)

    def _checked_scopes(self, params: Mapping[str, str]) -> Scopes:
        if params.get("response_mode", "query") not in ("query", "form_post"):
            raise OAuthError("invalid_request", 900144, "The response_mode must be query or form_post.")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", 70005, "The provided value for the input "
                             "parameter 'response_type' is not allowed for this request.")
        for name in ("state", "code_challenge"):
            if not params.get(name):
                raise missing(name)
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", 70011, "The provided value for the input parameter "
                             "'code_challenge_method' is not valid. Expected 'S256'.")
        return self.sim.parse_scopes(params.get("scope", ""))

    async def login(self, request: Request) -> Response:
        """The sign-in page's form: ``request_id``, ``username``, ``action`` (accept or cancel)."""
        form = await request.form()
        request_id = form.get("request_id", "")
        with self.state.lock:
            auth = self.state.auth_requests.pop(request_id, None)
        if auth is None:
            return _error_page(OAuthError("invalid_request", 90015, "This sign-in request has "
                                          "expired or was already used. Start again from the app."))
        user = self.sim.find_user(form.get("username"))
        if user is None:
            with self.state.lock:
                self.state.auth_requests[request_id] = auth
            return self._signin_page(request, request_id, auth, "Pick an account.")
        return self._complete(auth, user, accept=form.get("action") == "accept")

    def _complete(self, auth: AuthRequest, user: SimUser, *, accept: bool, silent: bool = False) -> Response:
        """Finish the browser leg: a code, or an error, posted back to the app's loopback listener."""
        if not accept:
            return _deliver(auth, _error_fields(OAuthError(
                "access_denied", 65004, "User declined to consent to access the app."), cancel=True))
        # Accepting the page is the user's consent; only an admin can lift admin approval.
        problem = self.sim.consent_problem(user, error="consent_required", user_can_consent=not silent)
        if problem is not None:
            return _deliver(auth, _error_fields(problem))
        code = f"1.A{secrets.token_urlsafe(96)}"
        with self.state.lock:
            self.state.consented.add(user.object_id)
            now = self.sim.clock()
            for key in [k for k, v in self.state.codes.items() if v.expires_at < now - 3600]:
                del self.state.codes[key]
            self.state.codes[code] = AuthCode(auth, user, now + CODE_LIFETIME_S)
        fields = {"code": code}
        if auth.want_client_info:
            fields["client_info"] = self.sim.client_info(user)
        fields["session_state"] = str(uuid.uuid4())
        return _deliver(auth, fields)

    def _signin_page(self, request: Request, request_id: str, auth: AuthRequest, note: str | None) -> Response:
        sim = self.sim
        with self.state.lock:
            mode = self.state.consent_mode
        action = f"{sim.public_base(request)}/{request.route_params['tenant']}/login"
        choices = self._user_choices(auth.login_hint)
        hidden = _hidden({"request_id": request_id})
        note_html = f"<p class='error'>{escape(note)}</p>" if note else ""
        if mode == "admin":
            body = (
                f"<h1>Need admin approval</h1>{note_html}<p>{escape(sim.admin_error().message)}</p>"
                f"<form method='POST' action='{escape(action)}'>{hidden}{choices}"
                "<button name='action' value='accept'>Continue</button>"
                "<button name='action' value='cancel' class='secondary'>Return to the application "
                "without granting consent</button></form>"
            )
            return Response.html(_page("Need admin approval", body))
        if mode == "user":
            items = "".join(f"<li>{escape(scope)}</li>" for scope in auth.scopes.resource)
            intro = (f"<h1>Permissions requested</h1><p>{escape(sim.app_name)} would like to:</p>"
                     f"<ul>{items}</ul><p>Accepting lets this app use this data as you.</p>")
        else:
            intro = (f"<h1>Pick an account</h1><p>Sign in to {escape(sim.app_name)} "
                     f"({escape(sim.tenant_name)}) as:</p>")
        body = (
            f"{intro}{note_html}<form method='POST' action='{escape(action)}'>{hidden}{choices}"
            "<button name='action' value='accept'>Accept</button>"
            "<button name='action' value='cancel' class='secondary'>Cancel</button></form>"
        )
        return Response.html(_page("Sign in to your account", body))

    def _user_choices(self, selected: str | None) -> str:
        chosen = self.sim.find_user(selected) or self.sim.users[0]
        return "".join(
            f"<label><input type='radio' name='username' value='{escape(u.user_principal_name)}'"
            f"{' checked' if u == chosen else ''}/> {escape(u.display_name)} "
            f"&lt;{escape(u.user_principal_name)}&gt;</label>"
            for u in self.sim.users
        )

    # -- device code verification page ---------------------------------------------------------

    async def devicelogin_page(self, request: Request) -> Response:
        return self._device_page(request, request.query.get("otc", ""))

    def _device_page(self, request: Request, user_code: str, note: str | None = None) -> Response:
        note_html = f"<p class='error'>{escape(note)}</p>" if note else ""
        body = (
            f"<h1>Enter code</h1>{note_html}<p>Enter the code displayed on your app or device.</p>"
            f"<form method='POST' action='{escape(self.sim.public_base(request))}/devicelogin'>"
            f"<input type='text' name='otc' value='{escape(user_code)}' autocomplete='off'/>"
            f"<p>Sign in as:</p>{self._user_choices(None)}"
            "<button name='action' value='approve'>Next</button>"
            "<button name='action' value='deny' class='secondary'>Cancel</button></form>"
        )
        return Response.html(_page("Enter code", body), 400 if note else 200)

    async def devicelogin_submit(self, request: Request) -> Response:
        """The verification form: ``otc`` (the user code), ``username``, ``action`` (approve/deny)."""
        form = await request.form()
        user_code = normal_code(form.get("otc", ""))
        user = self.sim.find_user(form.get("username")) or self.sim.users[0]
        now = self.sim.clock()
        with self.state.lock:
            device = next((d for d in self.state.device_codes.values()
                           if d.user_code == user_code and d.status == "pending" and now < d.expires_at),
                          None)
            if device is not None and form.get("action") == "deny":
                device.status = "declined"
            elif device is not None:
                self.state.approve(device, user)
            admin = self.state.consent_mode == "admin"
        if device is None:
            return self._device_page(request, form.get("otc", ""),
                                     "That code didn't work. Check the code and try again.")
        if device.status == "declined":
            return message_page("Sign-in declined", "You can close this window.")
        if admin:
            return message_page("Need admin approval", self.sim.admin_error().message)
        return message_page(self.sim.app_name, f"You have signed in to the {self.sim.app_name} "
                        f"application on your device as {user.user_principal_name}. "
                        "You may now close this window.")


_STYLE = """
body{font-family:"Segoe UI",system-ui,sans-serif;background:#f2f2f2;margin:0}
main{max-width:440px;margin:48px auto;background:#fff;padding:32px 40px;
box-shadow:0 2px 6px rgba(0,0,0,.2)}
.banner{background:#fff4ce;border:1px solid #e0c060;padding:6px 10px;font-size:13px;margin-bottom:18px}
h1{font-size:22px;font-weight:600;margin:0 0 14px}
label{display:block;margin:8px 0}
button{background:#0067b8;color:#fff;border:0;padding:8px 22px;font-size:15px;margin:14px 8px 0 0}
button.secondary{background:#ccc;color:#000}
.error{color:#a80000}
input[type=text]{font-size:18px;padding:6px;width:14em;letter-spacing:2px}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>"
        "<div class='banner'>Simulated Microsoft sign-in — CelesteOS test tenant, "
        "not a Microsoft service. Do not enter a real password.</div>"
        f"{body}</main></body></html>"
    )


def message_page(heading: str, text: str) -> Response:
    """A plain page with a heading and one paragraph (signed in, signed out, and the like)."""
    return Response.html(_page(heading, f"<h1>{escape(heading)}</h1><p>{escape(text)}</p>"))


def _hidden(fields: Mapping[str, str]) -> str:
    return "".join(
        f"<input type='hidden' name='{escape(name)}' value='{escape(value)}'/>"
        for name, value in fields.items()
    )


def _form_post_page(action_url: str, fields: Mapping[str, str]) -> str:
    """Entra's answer for ``response_mode=form_post``: a form that submits itself."""
    return (
        "<html><head><title>Working...</title></head><body>"
        f"<form method='POST' name='hiddenform' action='{escape(action_url)}'>{_hidden(fields)}"
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        "<input type='submit' value='Submit'/></noscript></form>"
        "<script>window.setTimeout(function(){document.forms[0].submit()},0);</script>"
        "</body></html>"
    )
