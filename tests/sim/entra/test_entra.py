"""The simulated Entra ID's wire protocol, checked over real HTTPS with httpx."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from celeste_desktop.sim.entra import DEFAULT_PERMISSIONS, DEVICE_CODE_GRANT
from celeste_desktop.sim.tokens import TokenError

if TYPE_CHECKING:
    # Annotations only: the helpers reach tests as fixtures.
    from .conftest import EntraEnv

REDIRECT = "http://localhost:8400"
OFFICER = "it.officer@mysimyacht.onmicrosoft.com"


def authorize_params(env: EntraEnv, **changes: str | None) -> tuple[dict[str, str], str]:
    verifier, challenge = env.pkce_pair()
    params: dict[str, str | None] = {
        "client_id": env.client_id, "response_type": "code", "redirect_uri": REDIRECT,
        "scope": "Files.Read.All User.Read offline_access openid profile", "state": "state-123",
        "code_challenge": challenge, "code_challenge_method": "S256", "nonce": "nonce-hash",
        "response_mode": "form_post", "client_info": "1", **changes,
    }
    return {k: v for k, v in params.items() if v is not None}, verifier


def authorize(env: EntraEnv, http: httpx.Client, **changes: str | None) -> tuple[dict[str, str], str]:
    """GET the authorize URL (auto-consent) and return the form_post fields and the verifier."""
    params, verifier = authorize_params(env, **changes)
    page = http.get(f"/{env.tenant_id}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200, page.text
    [form] = env.parse_page(page.text).forms
    assert form.action == params["redirect_uri"]
    return form.fields, verifier


def redeem(env: EntraEnv, http: httpx.Client, code: str, verifier: str, **extra: str) -> httpx.Response:
    data = {"client_id": env.client_id, "grant_type": "authorization_code", "code": code,
            "redirect_uri": REDIRECT, "code_verifier": verifier, "client_info": "1", **extra}
    return http.post(f"/{env.tenant_id}/oauth2/v2.0/token", data=data)


def sign_in(env: EntraEnv, http: httpx.Client) -> dict[str, Any]:
    fields, verifier = authorize(env, http)
    reply = redeem(env, http, fields["code"], verifier)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def assert_entra_error(reply: httpx.Response, error: str, code: int) -> dict[str, Any]:
    assert reply.status_code == 400, reply.text
    body: dict[str, Any] = reply.json()
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert body["error_codes"] == [code]
    assert {"timestamp", "trace_id", "correlation_id"} <= body.keys()
    return body


def b64json(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return data


def test_discovery_has_absolute_endpoints_on_this_server(entra: EntraEnv) -> None:
    with entra.http() as http:
        by_id = http.get(f"/{entra.tenant_id}/v2.0/.well-known/openid-configuration").json()
        by_domain = http.get("/mysimyacht.onmicrosoft.com/v2.0/.well-known/openid-configuration").json()
        common = http.get("/common/v2.0/.well-known/openid-configuration").json()

    tenant_url = f"{entra.base}/{entra.tenant_id}"
    assert by_id["authorization_endpoint"] == f"{tenant_url}/oauth2/v2.0/authorize"
    assert by_id["token_endpoint"] == f"{tenant_url}/oauth2/v2.0/token"
    assert by_id["device_authorization_endpoint"] == f"{tenant_url}/oauth2/v2.0/devicecode"
    assert by_id["issuer"] == f"{tenant_url}/v2.0"
    assert by_domain["token_endpoint"] == by_id["token_endpoint"]  # a domain resolves to the GUID
    assert common["issuer"] == f"{entra.base}/{{tenantid}}/v2.0"


def test_unknown_tenant(entra: EntraEnv) -> None:
    with entra.http() as http:
        reply = http.get("/not-our-tenant/v2.0/.well-known/openid-configuration")
    assert_entra_error(reply, "invalid_tenant", 90002)


def test_instance_discovery_points_back_here(entra: EntraEnv) -> None:
    with entra.http() as http:
        reply = http.get("/common/discovery/instance", params={
            "api-version": "1.1", "authorization_endpoint": f"{entra.authority_url}/oauth2/v2.0/authorize"})
    body = reply.json()
    assert body["tenant_discovery_endpoint"] == (
        f"{entra.authority_url}/v2.0/.well-known/openid-configuration")
    assert body["metadata"][0]["aliases"] == [urlsplit(entra.base).netloc]


@pytest.mark.parametrize(("changes", "code"), [
    ({"client_id": "00000000-0000-0000-0000-000000000000"}, 700016),
    ({"redirect_uri": "https://evil.example/callback"}, 50011),
    ({"redirect_uri": "http://localhost:8400/callback"}, 50011),
])
def test_authorize_shows_an_error_page_when_it_cannot_trust_the_request(
    entra: EntraEnv, changes: dict[str, str], code: int
) -> None:
    params, _ = authorize_params(entra, **changes)
    with entra.http() as http:
        page = http.get(f"/{entra.tenant_id}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 400
    assert f"AADSTS{code}:" in page.text
    assert entra.parse_page(page.text).forms == []  # nothing is sent to an untrusted redirect URI


@pytest.mark.parametrize(("changes", "error", "code"), [
    ({"code_challenge": None}, "invalid_request", 900144),
    ({"code_challenge_method": "plain"}, "invalid_request", 70011),
    ({"state": None}, "invalid_request", 900144),
    ({"response_type": "token"}, "unsupported_response_type", 70005),
    ({"scope": "api://someone-else/read"}, "invalid_scope", 70011),
])
def test_authorize_errors_go_back_to_the_app(
    entra: EntraEnv, changes: dict[str, str | None], error: str, code: int
) -> None:
    with entra.http() as http:
        fields, _ = authorize(entra, http, **changes)
    assert fields["error"] == error
    assert fields["error_description"].startswith(f"AADSTS{code}:")
    assert "code" not in fields


def test_code_flow_answers_like_entra(entra: EntraEnv) -> None:
    with entra.http() as http:
        fields, verifier = authorize(entra, http)
        reply = redeem(entra, http, fields["code"], verifier)

    assert fields["state"] == "state-123"
    assert b64json(fields["client_info"])["utid"] == entra.tenant_id
    assert reply.headers["cache-control"].startswith("no-store")
    body = reply.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3600
    assert body["scope"].split() == ["Files.Read.All", "User.Read", "profile", "openid", "email"]
    claims = entra.tokens.verify(body["access_token"], audience="https://graph.microsoft.com")
    assert claims["scp"] == body["scope"]
    assert claims["upn"] == claims["preferred_username"] == OFFICER
    assert claims["name"] == "Morgan Reyes" and claims["tid"] == entra.tenant_id
    assert claims["exp"] - claims["iat"] == 3600
    client_info = b64json(body["client_info"])
    assert client_info == {"uid": claims["oid"], "utid": entra.tenant_id}
    id_claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_claims["aud"] == entra.client_id and id_claims["nonce"] == "nonce-hash"
    assert id_claims["iss"] == f"{entra.authority_url}/v2.0"
    assert id_claims["oid"] == claims["oid"] and id_claims["preferred_username"] == OFFICER
    assert body["refresh_token"]


def test_token_lifetime_follows_the_fault_plan(entra: EntraEnv) -> None:
    entra.faults.token_lifetime = 120
    with entra.http() as http:
        body = sign_in(entra, http)
    claims = entra.tokens.verify(body["access_token"])
    assert body["expires_in"] == 120 and claims["exp"] - claims["iat"] == 120


def test_query_response_mode_redirects(entra: EntraEnv) -> None:
    params, _ = authorize_params(entra, response_mode="query")
    with entra.http() as http:
        reply = http.get(f"/{entra.tenant_id}/oauth2/v2.0/authorize", params=params)
    assert reply.status_code == 302
    location = urlsplit(reply.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == REDIRECT
    assert parse_qs(location.query)["state"] == ["state-123"] and "code" in parse_qs(location.query)


def test_cancel_on_the_sign_in_page(entra: EntraEnv) -> None:
    entra.sim.auto_consent = False
    params, _ = authorize_params(entra)
    with entra.http() as http:
        page = http.get(f"/{entra.tenant_id}/oauth2/v2.0/authorize", params=params)
        [form] = entra.parse_page(page.text).forms
        answer = http.post(form.action, data={**form.fields, "action": "cancel"})
    assert "Simulated Microsoft sign-in" in page.text and OFFICER in page.text
    [back] = entra.parse_page(answer.text).forms
    assert back.fields["error"] == "access_denied" and back.fields["error_subcode"] == "cancel"
    assert back.fields["error_description"].startswith("AADSTS65004:")


def test_prompt_none_cannot_consent_or_pick_a_stranger(entra: EntraEnv) -> None:
    entra.sim.require_consent("user")
    with entra.http() as http:
        no_consent, _ = authorize(entra, http, prompt="none")
        stranger, _ = authorize(entra, http, prompt="none", login_hint="nobody@example.com")
    assert no_consent["error"] == "consent_required"
    assert no_consent["error_description"].startswith("AADSTS65001:")
    assert stranger["error"] == "login_required"


def test_token_errors_carry_the_correlation_id(entra: EntraEnv) -> None:
    with entra.http() as http:
        reply = http.post(f"/{entra.tenant_id}/oauth2/v2.0/token",
                          data={"client_id": entra.client_id, "grant_type": "password"},
                          headers={"client-request-id": "corr-42"})
    body = assert_entra_error(reply, "unsupported_grant_type", 70003)
    assert body["correlation_id"] == "corr-42" and "Correlation ID: corr-42" in body["error_description"]


def test_token_request_checks_redirect_uri_and_expiry(entra: EntraEnv) -> None:
    with entra.http() as http:
        fields, verifier = authorize(entra, http)
        wrong_redirect = redeem(entra, http, fields["code"], verifier, redirect_uri="http://localhost:1")
        fields, verifier = authorize(entra, http)
        entra.clock.advance(601)
        expired = redeem(entra, http, fields["code"], verifier)
    assert_entra_error(wrong_redirect, "invalid_grant", 50011)
    assert_entra_error(expired, "invalid_grant", 70008)


def test_refresh_tokens_rotate_and_die_after_90_idle_days(entra: EntraEnv) -> None:
    token_url = f"/{entra.tenant_id}/oauth2/v2.0/token"
    with entra.http() as http:
        first = sign_in(entra, http)
        data = {"client_id": entra.client_id, "grant_type": "refresh_token",
                "scope": "Files.Read.All offline_access"}
        entra.clock.advance(89 * 86400)
        second = http.post(token_url, data={**data, "refresh_token": first["refresh_token"]}).json()
        entra.clock.advance(91 * 86400)
        stale = http.post(token_url, data={**data, "refresh_token": second["refresh_token"]})
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "Files.Read.All"
    assert_entra_error(stale, "invalid_grant", 700082)


def start_device_flow(env: EntraEnv, http: httpx.Client, scope: str = "User.Read offline_access") -> dict[str, Any]:
    reply = http.post(f"/{env.tenant_id}/oauth2/v2.0/devicecode",
                      data={"client_id": env.client_id, "scope": scope})
    assert reply.status_code == 200, reply.text
    flow: dict[str, Any] = reply.json()
    return flow


def poll(env: EntraEnv, http: httpx.Client, flow: dict[str, Any]) -> httpx.Response:
    return http.post(f"/{env.tenant_id}/oauth2/v2.0/token", data={
        "client_id": env.client_id, "grant_type": DEVICE_CODE_GRANT, "device_code": flow["device_code"]})


def test_device_code_polling(entra: EntraEnv) -> None:
    entra.sim.auto_consent = False
    with entra.http() as http:
        flow = start_device_flow(entra, http)
        pending = poll(entra, http, flow)
        too_fast = poll(entra, http, flow)
        entra.clock.advance(6.5)  # the interval grew from 1 s to 6 s
        still_pending = poll(entra, http, flow)
        entra.sim.approve_device_code(flow["user_code"])
        entra.clock.advance(7)
        approved = poll(entra, http, flow)
        entra.clock.advance(7)
        again = poll(entra, http, flow)

    assert flow["interval"] == 1 and flow["expires_in"] == 900 and len(flow["user_code"]) == 9
    assert_entra_error(pending, "authorization_pending", 70016)
    assert_entra_error(too_fast, "slow_down", 70016)
    assert_entra_error(still_pending, "authorization_pending", 70016)
    assert approved.status_code == 200 and "access_token" in approved.json()
    assert_entra_error(again, "invalid_grant", 54005)


def test_device_verification_page_refuses_a_wrong_code_and_records_a_denial(entra: EntraEnv) -> None:
    entra.sim.auto_consent = False
    with entra.http() as http:
        flow = start_device_flow(entra, http)
        wrong = http.post("/devicelogin", data={"otc": "WRONGCODE", "action": "approve"})
        denied = http.post("/devicelogin", data={"otc": flow["user_code"].lower(), "action": "deny"})
        answer = poll(entra, http, flow)
    assert wrong.status_code == 400 and "Check the code and try again" in wrong.text
    assert denied.status_code == 200
    assert_entra_error(answer, "authorization_declined", 70000)


def test_scopes_are_normalised(entra: EntraEnv) -> None:
    with entra.http() as http:
        full = start_device_flow(entra, http, "https://graph.microsoft.com/Files.Read.All openid")
        default = start_device_flow(entra, http, "https://graph.microsoft.com/.default")
        for flow in (full, default):
            entra.sim.approve_device_code(flow["user_code"])
        full_scope = poll(entra, http, full).json()["scope"]
        default_scope = poll(entra, http, default).json()["scope"]
    assert full_scope == "Files.Read.All openid email"
    assert default_scope.split() == list(DEFAULT_PERMISSIONS)


def test_control_endpoints(entra: EntraEnv) -> None:
    with entra.http() as http:
        body = sign_in(entra, http)
        assert http.post("/_sim/require-consent?mode=admin").status_code == 204
        assert http.get("/_sim/state").json()["consent_mode"] == "admin"
        assert http.post("/_sim/require-consent?mode=maybe").status_code == 400
        assert http.post("/_sim/require-consent?mode=none").status_code == 204
        assert http.post("/_sim/revoke").json() == {"revoked": 1}
        assert http.post("/_sim/expire-tokens").status_code == 204
        assert http.post("/_sim/approve-device-code").status_code == 409  # nothing pending
        assert http.post("/_sim/auto-consent?enabled=0").status_code == 204
        flow = start_device_flow(entra, http)
        assert http.get("/_sim/state").json()["pending_user_codes"] == [flow["user_code"]]
        approval = {"user_code": flow["user_code"], "user": "captain@mysimyacht.onmicrosoft.com"}
        assert http.post("/_sim/approve-device-code", params=approval).status_code == 204
        tokens = poll(entra, http, flow).json()
    assert entra.sim.auto_consent is False
    with pytest.raises(TokenError, match="expired"):
        entra.tokens.verify(body["access_token"])
    assert entra.tokens.verify(tokens["access_token"])["upn"] == "captain@mysimyacht.onmicrosoft.com"
