"""MSAL for Python's own code signs in against the simulated Entra ID over real HTTPS."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msal
import pytest

if TYPE_CHECKING:
    # Annotations only: the helpers reach tests as fixtures.
    from .conftest import EntraEnv, FakeBrowser

SCOPES = ["Files.Read.All", "User.Read"]
OFFICER = "it.officer@mysimyacht.onmicrosoft.com"
CAPTAIN = "captain@mysimyacht.onmicrosoft.com"


def sign_in_by_device_code(env: EntraEnv, app: msal.PublicClientApplication) -> dict[str, Any]:
    """The quickest sign-in: approve the code before MSAL's first poll, so nobody waits."""
    flow = app.initiate_device_flow(scopes=SCOPES)
    env.sim.approve_device_code(flow["user_code"])
    result: dict[str, Any] = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    return result


def refresh_tokens(app: msal.PublicClientApplication) -> list[str]:
    items = app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)
    return [item["secret"] for item in items]


def test_interactive_sign_in_with_auto_consent(entra: EntraEnv, browser: FakeBrowser) -> None:
    app = entra.msal_app()

    result = app.acquire_token_interactive(SCOPES, timeout=10)

    assert "access_token" in result, result
    assert not browser.errors
    assert "response_mode=form_post" in browser.opened[0]
    assert browser.listener_replies[0].status_code == 200  # MSAL's listener took code and state
    claims = entra.tokens.verify(result["access_token"], audience="https://graph.microsoft.com")
    assert {"Files.Read.All", "User.Read"} <= set(claims["scp"].split())
    assert claims["upn"] == OFFICER and claims["tid"] == entra.tenant_id
    assert result["id_token_claims"]["aud"] == entra.client_id  # nonce already checked by MSAL
    [account] = app.get_accounts()
    assert account["username"] == OFFICER
    assert account["home_account_id"] == f"{claims['oid']}.{entra.tenant_id}"
    assert entra.sim.grant_counts["authorization_code"] == 1


def test_interactive_sign_in_through_the_sign_in_page(entra: EntraEnv, browser: FakeBrowser) -> None:
    entra.sim.auto_consent = False
    browser.username = CAPTAIN
    app = entra.msal_app()

    result = app.acquire_token_interactive(SCOPES, login_hint=OFFICER, timeout=10)

    assert "access_token" in result, result
    assert "Simulated Microsoft sign-in" in browser.pages[0]
    assert app.get_accounts()[0]["username"] == CAPTAIN


def test_silent_refresh_rotates_the_refresh_token(entra: EntraEnv) -> None:
    entra.faults.token_lifetime = 60  # under MSAL's five minutes: every silent call refreshes
    app = entra.msal_app()
    first = sign_in_by_device_code(entra, app)
    [account] = app.get_accounts()
    [old_refresh_token] = refresh_tokens(app)

    again = app.acquire_token_silent(SCOPES, account=account)

    assert again is not None and again["access_token"] != first["access_token"]
    assert entra.sim.grant_counts["refresh_token"] == 1
    assert entra.tokens.verify(again["access_token"])["exp"] - time.time() <= 60
    assert refresh_tokens(app) != [old_refresh_token]  # MSAL stored the rotated one


def test_device_code_flow_is_approved_automatically(entra: EntraEnv) -> None:
    app = entra.msal_app()
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert flow["verification_uri"] == f"{entra.base}/devicelogin"
    assert flow["user_code"] in flow["message"]

    result = app.acquire_token_by_device_flow(flow)

    assert "access_token" in result, result
    assert app.get_accounts()[0]["username"] == OFFICER


def test_device_code_flow_approved_on_the_verification_page(entra: EntraEnv) -> None:
    entra.sim.auto_consent = False
    app = entra.msal_app()
    flow = app.initiate_device_flow(scopes=SCOPES)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(app.acquire_token_by_device_flow, flow)
        deadline = time.monotonic() + 5
        while not entra.sim.state.device_codes[flow["device_code"]].polls and time.monotonic() < deadline:
            time.sleep(0.02)  # MSAL's first poll: it is told authorization_pending
        with entra.http() as http:
            page = http.get(flow["verification_uri"])
            form = entra.parse_page(page.text).forms[0]
            answer = http.post(form.action, data={**form.fields, "otc": flow["user_code"],
                                                  "username": CAPTAIN, "action": "approve"})
        result = pending.result(10)

    assert answer.status_code == 200 and "You have signed in" in answer.text
    assert "access_token" in result, result
    assert app.get_accounts()[0]["username"] == CAPTAIN


def test_revoked_refresh_token_gives_invalid_grant(entra: EntraEnv) -> None:
    app = entra.msal_app()
    sign_in_by_device_code(entra, app)
    [account] = app.get_accounts()

    assert entra.sim.revoke_refresh_tokens() == 1
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)

    assert result is not None and result["error"] == "invalid_grant"
    assert result["error_description"].startswith(
        "AADSTS700082: The refresh token has expired due to inactivity.")
    assert app.acquire_token_silent(SCOPES, account=account, force_refresh=True) is None


@pytest.mark.parametrize(("mode", "code"), [("user", 65001), ("admin", 90094)])
def test_consent_required_on_refresh(entra: EntraEnv, mode: str, code: int) -> None:
    app = entra.msal_app()
    sign_in_by_device_code(entra, app)
    [account] = app.get_accounts()

    entra.sim.require_consent("user" if mode == "user" else "admin")
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)

    assert result is not None and result["error"] == "invalid_grant"
    assert result["suberror"] == "consent_required"
    assert result["error_description"].startswith(f"AADSTS{code}:")
    assert result["error_codes"] == [code]


def test_user_consent_in_the_browser_fixes_consent_required(entra: EntraEnv, browser: FakeBrowser) -> None:
    entra.sim.require_consent("user")
    entra.sim.auto_consent = False
    app = entra.msal_app()

    result = app.acquire_token_interactive(SCOPES, timeout=10)

    assert "access_token" in result, result
    assert "Permissions requested" in browser.pages[0] and "Files.Read.All" in browser.pages[0]
    [account] = app.get_accounts()
    again = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)
    assert again is not None and "access_token" in again, again


def test_admin_approval_required_in_the_browser(entra: EntraEnv, browser: FakeBrowser) -> None:
    entra.sim.require_consent("admin")
    app = entra.msal_app()

    result = app.acquire_token_interactive(SCOPES, timeout=10)

    assert result["error"] == "consent_required"
    assert result["error_description"].startswith("AADSTS90094: Admin approval required.")
    assert app.get_accounts() == []


def test_unknown_client_id(entra: EntraEnv) -> None:
    app = entra.msal_app(client_id="00000000-1111-2222-3333-444444444444")

    flow = app.initiate_device_flow(scopes=SCOPES)

    assert flow["error"] == "unauthorized_client"
    assert flow["error_description"].startswith("AADSTS700016:")


def auth_code_response(entra: EntraEnv, app: msal.PublicClientApplication) -> tuple[dict[str, Any], dict[str, str]]:
    """Start MSAL's auth code flow and play the browser by hand up to the form_post answer."""
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri="http://localhost:8400", response_mode="form_post")
    with entra.http() as http:
        page = http.get(flow["auth_uri"])
    form = entra.parse_page(page.text).forms[0]
    assert form.action == "http://localhost:8400"
    return flow, form.fields


def test_wrong_pkce_verifier_is_refused(entra: EntraEnv) -> None:
    app = entra.msal_app()
    flow, auth_response = auth_code_response(entra, app)
    flow["code_verifier"] = "x" * 43

    result = app.acquire_token_by_auth_code_flow(flow, auth_response)

    assert result["error"] == "invalid_grant"
    assert result["error_description"].startswith("AADSTS501481:")


def test_authorization_code_is_single_use(entra: EntraEnv) -> None:
    app = entra.msal_app()
    flow, auth_response = auth_code_response(entra, app)

    first = app.acquire_token_by_auth_code_flow(dict(flow), auth_response)
    second = app.acquire_token_by_auth_code_flow(dict(flow), auth_response)

    assert "access_token" in first, first
    assert second["error"] == "invalid_grant"
    assert second["error_description"].startswith("AADSTS54005:")


def test_expired_device_code(entra: EntraEnv) -> None:
    entra.sim.auto_consent = False
    app = entra.msal_app()
    flow = app.initiate_device_flow(scopes=SCOPES)

    entra.sim.expire_device_codes()
    result = app.acquire_token_by_device_flow(flow)

    assert result["error"] == "expired_token"
    assert result["error_description"].startswith("AADSTS70019:")
