"""The MSAL session's set-up: scopes, instance discovery, the HTTP session MSAL talks through
(trust, proxy, no environment), and what works without any network (status, sign-out)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import msal
import pytest
import requests
from proxy_helpers import ConnectProxy
from urllib3.util.retry import Retry

from celeste_desktop.auth.msal_app import TrustAdapter, instance_discovery_for, make_http_session, scopes_for
from celeste_desktop.auth.session import MsalSession
from celeste_desktop.cli.auth_cmd import open_session
from celeste_desktop.cli.context import CliContext
from celeste_desktop.config.paths import AppPaths
from celeste_desktop.config.settings import CLOUD_PRESETS, Settings, load_settings, save_settings
from celeste_desktop.domain.errors import ServiceUnavailable
from celeste_desktop.sim.stack import SimStack


def test_scopes_are_delegated_read_only() -> None:
    assert scopes_for(Settings()) == ("Files.Read.All", "User.Read", "Sites.Read.All")
    assert scopes_for(Settings(include_sharepoint=False)) == ("Files.Read.All", "User.Read")
    reserved = {"offline_access", "openid", "profile"}
    assert not reserved & set(scopes_for(Settings()))


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        (CLOUD_PRESETS["global"].authority, True),
        ("https://LOGIN.microsoftonline.com/", True),
        (CLOUD_PRESETS["usgov"].authority, False),
        (CLOUD_PRESETS["china"].authority, False),
        ("https://127.0.0.1:8443", False),
        ("https://login.microsoftonline.com.evil.example", False),
    ],
)
def test_instance_discovery_only_for_the_global_host(authority: str, expected: bool) -> None:
    assert instance_discovery_for(authority) is expected


def test_http_session_ignores_the_environment(sim: SimStack) -> None:
    settings = Settings(ca_bundle=str(sim.tls.ca_bundle), proxy="http://proxy.example:3128")

    session = make_http_session(settings)

    assert session.trust_env is False
    assert session.verify == str(sim.tls.ca_bundle)
    assert session.proxies == {"http": "http://proxy.example:3128", "https": "http://proxy.example:3128"}
    assert isinstance(session.get_adapter("https://login.microsoftonline.com"), TrustAdapter)
    assert session.headers["User-Agent"].startswith("ISV|CelesteOS|CelesteDesktop/")


def test_environment_bundle_and_proxy_do_not_override_the_settings(
    sim: SimStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    session = make_http_session(Settings(ca_bundle=str(sim.tls.ca_bundle)))

    reply = session.get(f"{sim.entra.authority}/v2.0/.well-known/openid-configuration")

    assert reply.status_code == 200
    session.close()


def test_adapter_keeps_its_own_trust(sim: SimStack) -> None:
    context = ssl.create_default_context()
    adapter = TrustAdapter(context)
    request = requests.Request("GET", "https://login.microsoftonline.com/x").prepare()

    _, pool_kwargs = adapter.build_connection_pool_key_attributes(request, str(sim.tls.ca_bundle))

    assert "ca_certs" not in pool_kwargs and pool_kwargs["ssl_context"] is context
    with pytest.raises(ValueError, match="cannot be turned off"):
        adapter.build_connection_pool_key_attributes(request, False)


def test_only_failed_connects_are_retried() -> None:
    adapter = make_http_session(Settings()).get_adapter("https://login.microsoftonline.com")

    assert (adapter.max_retries.connect, adapter.max_retries.read, adapter.max_retries.status) == (2, 0, 0)


# -- against the simulated Entra ID -------------------------------------------------------------


@pytest.fixture
def context(sim_home: Path) -> CliContext:
    return CliContext(paths=AppPaths.resolve(sim_home))


def with_settings(context: CliContext, **changes: object) -> CliContext:
    save_settings(context.paths.settings_file, load_settings(context.paths.settings_file).replace(**changes))
    return CliContext(paths=context.paths)


async def test_untrusted_certificate_is_explained(context: CliContext) -> None:
    # Only the OS store: the simulators' throwaway CA is not in it.
    session = open_session(with_settings(context, ca_bundle=""))

    with pytest.raises(ServiceUnavailable) as caught:
        await session.sign_in_with_device_code(lambda _prompt: None)

    assert caught.value.title == "Secure connection failed"
    assert "certificate" in caught.value.message and "Settings → Network" in caught.value.message


async def test_unreachable_sign_in_host(context: CliContext) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = load_settings(with_settings(context, authority=f"https://127.0.0.1:{port}").paths.settings_file)
    http = make_http_session(settings)
    http.get_adapter("https://127.0.0.1").max_retries = Retry(0)  # the retries' pauses are not under test
    session = MsalSession(settings, context.secrets(), http=http)

    with pytest.raises(ServiceUnavailable, match="could not be reached") as caught:
        await session.sign_in_with_device_code(lambda _prompt: None)

    assert caught.value.code == "unreachable"


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    proxy = ConnectProxy()
    yield proxy
    proxy.close()


async def test_sign_in_goes_through_the_proxy(context: CliContext, sim: SimStack, proxy: ConnectProxy) -> None:
    session = open_session(with_settings(context, proxy=f"http://127.0.0.1:{proxy.port}"))

    account = await session.sign_in_with_device_code(lambda prompt: sim.entra.approve_device_code(prompt.user_code))

    assert account.username.startswith("it.officer@")
    entra_port = sim.servers["entra"].base_url.rsplit(":", 1)[1]
    assert proxy.connects and set(proxy.connects) == {f"127.0.0.1:{entra_port}"}
    session.close()


async def test_status_and_sign_out_need_no_network(context: CliContext, sim: SimStack) -> None:
    session = open_session(context)
    account = await session.sign_in_with_device_code(lambda prompt: sim.entra.approve_device_code(prompt.user_code))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{closed.getsockname()[1]}"
    offline = MsalSession(Settings(**{**session.settings.__dict__, "authority": dead}), context.secrets())

    assert offline.current_account() == account
    offline.sign_out()

    assert offline.current_account() is None
    assert not context.paths.vault_file.exists() and not context.paths.key_file.exists()


def test_account_shows_upn_tenant_and_name(context: CliContext, sim: SimStack) -> None:
    session = open_session(context)
    asyncio.run(session.sign_in_with_device_code(lambda prompt: sim.entra.approve_device_code(prompt.user_code)))

    account = MsalSession(session.settings, context.secrets()).current_account()

    assert account is not None
    assert account.as_dict() == {
        "username": "it.officer@mysimyacht.onmicrosoft.com",
        "tenant_id": sim.entra.tenant_id,
        "display_name": "Morgan Reyes",
    }
    assert not any(
        token.get("secret") in repr(account)
        for token in session._cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    )
