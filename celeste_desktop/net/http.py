"""The HTTP client factory: trust (OS store plus an optional CA bundle), proxy, User-Agent,
timeouts and one keep-alive connection pool, with shaping and metering wrapped around it.

The client never reads proxy or CA settings from the environment (``trust_env=False``):
``HTTPS_PROXY`` or ``SSL_CERT_FILE`` left on a bridge PC must not silently override what the
officer set in the app.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from celeste_desktop import __version__
from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.net.shaping import ByteMeter, RateLimiter, ShapedTransport
from celeste_desktop.net.streams import AsyncioBackend, install_backend

__all__ = ["USER_AGENT", "HttpOptions", "make_async_client", "make_ssl_context"]

# Microsoft's guidance for decorating traffic to Graph; it lowers throttling priority for
# unidentified clients.
USER_AGENT = f"ISV|CelesteOS|CelesteDesktop/{__version__}"


@dataclass(frozen=True)
class HttpOptions:
    ca_bundle: Path | None = None  # extra CAs (PEM), e.g. a TLS-inspecting proxy's
    use_system_trust: bool = True  # the OS trust store; else Mozilla's bundle (certifi)
    proxy: str | None = None  # http://[user:pass@]host:port
    user_agent: str = USER_AGENT
    # A satellite round trip is 600 ms or more and handshakes take several: be patient.
    connect_timeout: float = 30.0
    read_timeout: float = 120.0
    max_connections: int = 16


def make_ssl_context(options: HttpOptions) -> ssl.SSLContext:
    """A client TLS context trusting the OS store (or certifi) plus ``options.ca_bundle``."""
    context: ssl.SSLContext
    if options.use_system_trust:
        try:
            import truststore
        except ImportError:  # platforms truststore does not support: OpenSSL's defaults
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        else:
            context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        try:
            import certifi
        except ImportError:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        else:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=options.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "CA bundle",
                f"{options.ca_bundle} could not be loaded as PEM certificates "
                f"({exc.__class__.__name__}: {exc}). Choose the certificate file your IT "
                "department or vessel ISP provides, or clear the setting.",
            ) from exc
    return context


def _check_proxy(proxy: str) -> str:
    try:
        url = httpx.URL(proxy)
    except httpx.InvalidURL as exc:
        raise ConfigError("Proxy", f"not a valid URL ({exc}).") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(
            "Proxy",
            "use the form http://host:port (SOCKS proxies are not supported).",
        )
    return proxy


def make_async_client(
    options: HttpOptions,
    *,
    meter: ByteMeter | None = None,
    up_limiter: RateLimiter | None = None,
    down_limiter: RateLimiter | None = None,
) -> httpx.AsyncClient:
    """One pooled HTTP/1.1 client; share it, and close it with ``await client.aclose()``."""
    limits = httpx.Limits(
        max_connections=options.max_connections,
        max_keepalive_connections=options.max_connections,
        keepalive_expiry=30.0,
    )
    inner = httpx.AsyncHTTPTransport(
        verify=make_ssl_context(options),
        http1=True,
        http2=False,
        limits=limits,
        proxy=_check_proxy(options.proxy) if options.proxy else None,
        trust_env=False,
    )
    # asyncio's transports under httpcore: many TLS records per read (net/streams.py).
    install_backend(inner, AsyncioBackend())
    transport = ShapedTransport(inner, meter=meter, up_limiter=up_limiter, down_limiter=down_limiter)
    timeout = httpx.Timeout(
        connect=options.connect_timeout,
        read=options.read_timeout,
        write=options.read_timeout,
        # Waiting for a free pooled connection is not a network failure; the retry policy
        # already bounds how many requests are in flight.
        pool=None,
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        headers={"User-Agent": options.user_agent},
        trust_env=False,
        follow_redirects=False,
    )
