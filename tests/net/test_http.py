"""The client factory: User-Agent, proxy, no environment overrides, trust with a CA bundle."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from celeste_desktop import __version__
from celeste_desktop.domain.errors import ConfigError, ServiceUnavailable
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.http import USER_AGENT, HttpOptions, make_async_client, make_ssl_context
from celeste_desktop.net.policy import RetryPolicy

if TYPE_CHECKING:
    from conftest import LoopbackServer


def test_user_agent_follows_microsofts_decoration() -> None:
    assert f"ISV|CelesteOS|CelesteDesktop/{__version__}" == USER_AGENT
    assert HttpOptions().user_agent == USER_AGENT


async def test_client_sends_the_user_agent_and_settings(loopback: LoopbackServer) -> None:
    options = HttpOptions(connect_timeout=12, read_timeout=34, max_connections=3)
    async with make_async_client(options) as client:
        response = await client.get(f"{loopback.url}/hello")
        assert client.timeout.connect == 12 and client.timeout.read == 34
        assert client.timeout.pool is None
        assert not client.follow_redirects
    assert response.status_code == 200
    assert f"\r\nUser-Agent: {USER_AGENT}\r\n".encode() in loopback.request_heads[0]


async def test_connections_are_kept_alive(loopback: LoopbackServer) -> None:
    async with make_async_client(HttpOptions()) as client:
        for _ in range(5):
            await client.get(f"{loopback.url}/again")
    assert loopback.connections == 1


async def test_environment_proxies_are_ignored(loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with make_async_client(HttpOptions()) as client:
        response = await client.get(f"{loopback.url}/direct")
    assert response.status_code == 200
    assert loopback.request_heads[0].startswith(b"GET /direct HTTP/1.1")


async def test_the_configured_proxy_is_used(loopback: LoopbackServer) -> None:
    async with make_async_client(HttpOptions(proxy=loopback.url)) as client:
        response = await client.get("http://graph.example.invalid/v1.0/me?x=1")
    assert response.status_code == 200
    assert loopback.request_heads[0].startswith(b"GET http://graph.example.invalid/v1.0/me?x=1 HTTP/1.1")


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", "127.0.0.1:3128", "http://"])
def test_unusable_proxies_are_config_errors(proxy: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_async_client(HttpOptions(proxy=proxy))
    assert caught.value.setting == "Proxy"


# -- trust -------------------------------------------------------------------------------------


def test_ssl_context_verifies(ca_file: Path) -> None:
    for options in (HttpOptions(), HttpOptions(use_system_trust=False, ca_bundle=ca_file)):
        context = make_ssl_context(options)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("system_trust", [True, False])
async def test_a_ca_bundle_is_trusted(tls_loopback: LoopbackServer, ca_file: Path, system_trust: bool) -> None:
    options = HttpOptions(ca_bundle=ca_file, use_system_trust=system_trust)
    async with make_async_client(options) as client:
        response = await client.get(f"https://localhost:{tls_loopback.port}/secure")
    assert response.status_code == 200


async def test_an_unknown_ca_is_refused_with_an_actionable_message(
    tls_loopback: LoopbackServer,
) -> None:
    policy = RetryPolicy(clock=FakeClock())
    url = f"https://localhost:{tls_loopback.port}/secure?sig=SECRET"
    async with make_async_client(HttpOptions()) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await policy.send(client, lambda: httpx.Request("GET", url), service="Supabase")
    assert "certificate" in caught.value.message and "Settings" in caught.value.message
    assert "SECRET" not in str(caught.value)


def test_a_missing_or_bad_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    for path in (tmp_path / "missing.pem", not_pem):
        with pytest.raises(ConfigError) as caught:
            make_ssl_context(HttpOptions(ca_bundle=path))
        assert caught.value.setting == "CA bundle"
        assert str(path) in caught.value.message
