"""The gateway's apikey rule, Bearer checks on Storage, and faults picked per service by path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from celeste_desktop.sim.supabase import service_for_path

if TYPE_CHECKING:
    from conftest import Supa


def test_missing_and_wrong_apikeys_are_refused_by_the_gateway(supa: Supa) -> None:
    yacht_key = supa.sim.mint_yacht_key(supa.yacht_a)
    no_key = supa.client(yacht_key, apikey="")
    for path in ("/rest/v1/doc_metadata", "/storage/v1/bucket"):
        missing = no_key.get(path)
        assert (missing.status_code, missing.json()) == (401, {"message": "No API key found in request"})
    as_apikey = supa.client(yacht_key, apikey=yacht_key).get("/rest/v1/doc_metadata")
    assert (as_apikey.status_code, as_apikey.json()) == (401, {"message": "Invalid API key"})
    garbage = supa.client(apikey="not-a-key").get("/storage/v1/bucket")
    assert garbage.json() == {"message": "Invalid API key"}
    foreign = supa.client(apikey=supa.sim.mint_anon_key())  # any anon key of this project passes
    assert foreign.get("/storage/v1/bucket").status_code == 200


def test_bearer_defaults_to_the_apikey_and_bad_tokens_are_invalid_jwt(supa: Supa) -> None:
    service_only = supa.client(apikey=supa.sim.service_key)
    assert [b["id"] for b in service_only.get("/storage/v1/bucket").json()] == ["documents"]
    short = supa.sim.mint_yacht_key(supa.yacht_a, lifetime_s=60)
    supa.sim.tokens.expire_all_now(120)
    expired = supa.client(short).get("/storage/v1/bucket")
    assert expired.status_code == 400
    assert expired.json() == {"statusCode": "400", "error": "InvalidJWT", "message": "jwt expired"}
    malformed = supa.client("abc").get("/storage/v1/bucket")
    assert malformed.json()["message"] == "jwt malformed"


def test_faults_are_picked_per_service_on_the_one_origin(supa: Supa) -> None:
    assert service_for_path("/rest/v1/doc_metadata") == "rest"
    assert service_for_path("/storage/v1/upload/resumable") == "storage"
    client = supa.yacht()
    supa.faults.script("rest", "503", retry_after=2)
    assert client.get("/storage/v1/bucket").status_code == 200  # storage is untouched
    throttled = client.get("/rest/v1/doc_metadata")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (503, "2")
    supa.faults.script("storage", "500")
    assert client.get("/rest/v1/doc_metadata").status_code == 200
    assert client.get("/storage/v1/bucket").status_code == 500
    assert supa.faults.injected == [("rest", "503"), ("storage", "500")]


def test_bodiless_requests_keep_the_connection_alive(supa: Supa) -> None:
    client = supa.yacht()
    for _ in range(3):
        assert client.get("/storage/v1/bucket").status_code == 200
        assert client.get("/rest/v1/doc_metadata").status_code == 200
    assert supa.server.stats.connections == 1
