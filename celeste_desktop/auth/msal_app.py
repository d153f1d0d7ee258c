"""Building MSAL's ``PublicClientApplication`` for the app's settings, and the HTTP it talks through.

The authority comes from the settings (global, US Government, China, or a custom host such as
the simulator); instance discovery stays on only for Microsoft's global host. Scopes are the
delegated, read-only Graph permissions.

MSAL talks through a ``requests`` session that ignores the environment (``trust_env=False``:
``REQUESTS_CA_BUNDLE`` or ``HTTPS_PROXY`` left on a bridge PC would silently override the app's
settings), verifies TLS with the app's own context (the OS trust store plus the CA bundle, from
``net.http.make_ssl_context``), uses the app's proxy and never waits forever.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from celeste_desktop.auth.errors import ErrorContext, authority_error, network_error
from celeste_desktop.config.settings import Settings
from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.net.http import USER_AGENT, HttpOptions, make_ssl_context

__all__ = [
    "GLOBAL_AUTHORITY_HOST",
    "READ_SCOPES",
    "SHAREPOINT_SCOPE",
    "TrustAdapter",
    "build_public_client",
    "http_options_for",
    "instance_discovery_for",
    "make_http_session",
    "scopes_for",
]

GLOBAL_AUTHORITY_HOST = "login.microsoftonline.com"
READ_SCOPES = ("Files.Read.All", "User.Read")
SHAREPOINT_SCOPE = "Sites.Read.All"
# A satellite round trip is 600 ms or more and TLS takes several: be patient, but never hang.
_TIMEOUT = (30.0, 120.0)


def scopes_for(settings: Settings) -> tuple[str, ...]:
    """Delegated, read-only Graph permissions; MSAL adds openid/profile/offline_access itself."""
    return (*READ_SCOPES, SHAREPOINT_SCOPE) if settings.include_sharepoint else READ_SCOPES


def instance_discovery_for(authority: str) -> bool:
    """Only Microsoft's global host keeps instance discovery: elsewhere a failed refresh would
    call login.microsoftonline.com whatever the authority (a national cloud, the simulator)."""
    return (urlsplit(authority).hostname or "").lower() == GLOBAL_AUTHORITY_HOST


class TrustAdapter(HTTPAdapter):
    """Verifies TLS with one prepared ``SSLContext`` rather than requests' certifi file.

    The context already holds the OS trust store and the app's CA bundle, so the CA paths
    requests would add per connection (certifi, or ``verify`` given as a path) are dropped;
    otherwise urllib3 would load them into the shared context on every connection.
    """

    def __init__(self, ssl_context: ssl.SSLContext, *, max_retries: Retry | int = 0) -> None:
        self._ssl_context = ssl_context
        super().__init__(max_retries=max_retries)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self._ssl_context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if verify is False:
            raise ValueError("TLS verification cannot be turned off for Microsoft sign-in")
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        pool_kwargs["ssl_context"] = self._ssl_context
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        # MSAL passes no timeout when given an http_client; a dead link must not hang a thread.
        return super().send(
            request, stream=stream, timeout=timeout or _TIMEOUT, verify=verify, cert=cert, proxies=dict(proxies or {})
        )


def http_options_for(settings: Settings) -> HttpOptions:
    return HttpOptions(
        ca_bundle=Path(settings.ca_bundle) if settings.ca_bundle else None,
        use_system_trust=settings.use_system_trust,
        proxy=settings.proxy or None,
    )


def make_http_session(settings: Settings) -> requests.Session:
    """The requests session MSAL uses: no environment, the app's trust and proxy, a User-Agent."""
    session = requests.Session()
    session.trust_env = False
    # The adapter's context carries the bundle; verify names it too so the intent is visible.
    session.verify = settings.ca_bundle or True
    if settings.proxy:
        session.proxies = {"http": settings.proxy, "https": settings.proxy}
    # Only failed connects are retried: the request never left, so a token call is not repeated.
    adapter = TrustAdapter(
        make_ssl_context(http_options_for(settings)),
        max_retries=Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0, backoff_factor=0.5),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def build_public_client(
    settings: Settings, cache: msal.SerializableTokenCache, http: requests.Session, context: ErrorContext
) -> Any:
    """MSAL's public client for ``settings`` (it fetches the tenant's OpenID configuration)."""
    if not settings.client_id:
        raise ConfigError(
            "client_id",
            "not set; give the Application (client) id of the app registration "
            "(`celeste-desktop config set client_id <uuid>` or a provisioning file)",
        )
    if not settings.effective_authority:
        raise ConfigError("authority", "not set; choose a cloud preset or give the sign-in host")
    try:
        return msal.PublicClientApplication(
            settings.client_id,
            authority=settings.authority_url,
            token_cache=cache,
            http_client=http,
            instance_discovery=instance_discovery_for(settings.effective_authority),
        )
    except requests.RequestException as exc:
        raise network_error(exc, context) from None
    except ValueError as exc:
        raise authority_error(exc, context) from None
