"""The simulated Storage REST API over real TLS sockets: uploads, refusals, info, list, delete."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from celeste_desktop.sim.supabase_objects import BucketConfig

if TYPE_CHECKING:
    from conftest import Supa


def key(supa: Supa, rest: str = "02_ENGINEERING/manual.pdf", yacht: str | None = None) -> str:
    return f"{yacht or supa.yacht_a}/{rest}"


def test_upload_stores_the_object_with_owner_and_type(supa: Supa) -> None:
    client = supa.yacht()
    name = key(supa)
    reply = client.post(
        f"/storage/v1/object/documents/{name}",
        content=b"%PDF-1.7 engine manual",
        headers={"content-type": "application/pdf", "cache-control": "max-age=3600"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["Key"] == f"documents/{name}"
    assert supa.sim.read_object("documents", name) == b"%PDF-1.7 engine manual"
    stored = supa.sim.object_info("documents", name)
    assert stored is not None
    assert stored.id == body["Id"]
    assert stored.mimetype == "application/pdf"
    assert stored.cache_control == "max-age=3600"
    assert stored.owner is not None  # the yacht key's sub
    assert supa.sim.counters.standard_bytes == len(b"%PDF-1.7 engine manual")


def test_duplicate_without_upsert_is_400_with_409_in_the_body(supa: Supa) -> None:
    client = supa.yacht()
    url = f"/storage/v1/object/documents/{key(supa)}"
    first = client.post(url, content=b"one")
    assert first.status_code == 200
    again = client.post(url, content=b"two")
    assert again.status_code == 400
    assert again.json() == {
        "statusCode": "409",
        "error": "Duplicate",
        "message": "The resource already exists",
    }
    assert supa.sim.read_object("documents", key(supa)) == b"one"

    upserted = client.post(url, content=b"three", headers={"x-upsert": "true"})
    assert upserted.status_code == 200
    assert upserted.json()["Id"] == first.json()["Id"]  # the same row, a new version
    assert supa.sim.read_object("documents", key(supa)) == b"three"

    replaced = client.put(url, content=b"four")
    assert replaced.status_code == 200
    assert supa.sim.read_object("documents", key(supa)) == b"four"
    assert len(supa.sim.list_objects()) == 1


def test_invalid_key_and_missing_bucket(supa: Supa) -> None:
    client = supa.yacht()
    accented = client.post(f"/storage/v1/object/documents/{supa.yacht_a}/Pi%C3%A8ce%20%231.pdf", content=b"x")
    assert accented.status_code == 400
    assert accented.json() == {
        "statusCode": "400",
        "error": "InvalidKey",
        "message": f"Invalid key: {supa.yacht_a}/Pièce #1.pdf",
    }
    missing = client.post(f"/storage/v1/object/nowhere/{key(supa)}", content=b"x")
    assert missing.status_code == 400
    assert missing.json()["statusCode"] == "404"
    assert missing.json()["error"] == "Bucket not found"
    assert supa.sim.list_objects() == []


def test_size_limit_is_answered_before_the_body_and_closes_the_connection(
    make_supa: Callable[..., Supa],
) -> None:
    supa = make_supa(buckets={"documents": BucketConfig(file_size_limit=1000)})
    token = supa.sim.mint_yacht_key(supa.yacht_a)
    head = (
        f"POST /storage/v1/object/documents/{key(supa)} HTTP/1.1\n"
        f"Host: 127.0.0.1:{supa.server.port}\napikey: {supa.sim.anon_key}\n"
        f"Authorization: Bearer {token}\nContent-Type: application/pdf\nContent-Length: 50000000"
    )
    # Not one byte of the 50 MB body is sent: the answer must come anyway, then EOF.
    raw = supa.raw(head)
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower()
    assert json.loads(body) == {
        "statusCode": "413",
        "error": "Payload too large",
        "message": "The object exceeded the maximum allowed size",
    }
    assert supa.sim.list_objects() == []

    # A global limit below the bucket's applies too, and httpx sees the same refusal.
    small = make_supa(global_file_size_limit=10)
    reply = small.yacht().post(f"/storage/v1/object/documents/{key(small)}", content=b"x" * 11)
    assert reply.status_code == 400
    assert reply.json()["statusCode"] == "413"
    assert reply.headers["connection"] == "close"


def test_rls_keeps_each_yacht_and_anon_out_of_other_prefixes(supa: Supa) -> None:
    refused = supa.yacht(supa.yacht_a).post(
        f"/storage/v1/object/documents/{key(supa, yacht=supa.yacht_b)}", content=b"x"
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "statusCode": "403",
        "error": "Unauthorized",
        "message": "new row violates row-level security policy",
    }
    anon = supa.client().post(f"/storage/v1/object/documents/{key(supa)}", content=b"x")
    assert anon.json()["statusCode"] == "403"
    top_level = supa.yacht().post("/storage/v1/object/documents/loose.pdf", content=b"x")
    assert top_level.json()["statusCode"] == "403"
    service = supa.service().post(f"/storage/v1/object/documents/{key(supa, yacht=supa.yacht_b)}", content=b"x")
    assert service.status_code == 200
    assert supa.sim.object_info("documents", key(supa, yacht=supa.yacht_b)).owner is None  # type: ignore[union-attr]


def test_head_info_and_download(supa: Supa) -> None:
    client = supa.yacht()
    name = key(supa)
    metadata = base64.b64encode(json.dumps({"original_name": "Pièce #1.pdf"}).encode()).decode()
    client.post(
        f"/storage/v1/object/documents/{name}",
        content=b"0123456789",
        headers={"content-type": "application/pdf", "x-metadata": metadata},
    )
    head = client.head(f"/storage/v1/object/documents/{name}")
    assert head.status_code == 200
    assert head.headers["content-length"] == "10"
    assert head.headers["content-type"] == "application/pdf"
    assert head.headers["etag"] == '"781e5e245d69b566979b86e28d23f2c7"'  # md5 of the bytes

    info = client.get(f"/storage/v1/object/info/documents/{name}").json()
    assert info["size"] == 10
    assert info["content_type"] == "application/pdf"
    assert info["etag"] == head.headers["etag"]
    assert info["metadata"] == {"original_name": "Pièce #1.pdf"}
    assert info["name"] == name and info["bucket_id"] == "documents"
    assert {"id", "version", "last_modified", "created_at", "cache_control"} <= info.keys()
    assert client.get(f"/storage/v1/object/info/authenticated/documents/{name}").json() == info

    assert client.get(f"/storage/v1/object/authenticated/documents/{name}").content == b"0123456789"
    missing = client.head(f"/storage/v1/object/documents/{supa.yacht_a}/nothing.pdf")
    assert missing.status_code == 400  # HEAD carries no body, so the 404 is only in the status
    other = supa.yacht(supa.yacht_b).get(f"/storage/v1/object/info/documents/{name}")
    assert other.json()["statusCode"] == "404"  # RLS hides yacht A's object from yacht B


def test_list_and_delete(supa: Supa) -> None:
    client = supa.yacht()
    for rest in ("a/one.pdf", "a/two.pdf", "a/sub/three.pdf", "b/four.pdf"):
        assert client.post(f"/storage/v1/object/documents/{key(supa, rest)}", content=b"x").status_code == 200
    supa.service().post(f"/storage/v1/object/documents/{key(supa, 'a/other.pdf', supa.yacht_b)}", content=b"y")

    listed = client.post("/storage/v1/object/list/documents", json={"prefix": f"{supa.yacht_a}/a", "limit": 100})
    assert [e["name"] for e in listed.json()] == ["one.pdf", "sub", "two.pdf"]  # by name, as storage.search
    first, folder = listed.json()[0], listed.json()[1]
    assert folder["id"] is None and folder["metadata"] is None
    assert first["metadata"]["size"] == 1 and first["metadata"]["mimetype"] == "application/octet-stream"
    top = client.post("/storage/v1/object/list/documents", json={"prefix": ""}).json()
    assert [e["name"] for e in top] == [supa.yacht_a]  # yacht B's folder is invisible

    # Yacht keys have no DELETE policy; the service role does.
    assert (
        client.request("DELETE", "/storage/v1/object/documents", json={"prefixes": [key(supa, "b/four.pdf")]}).json()
        == []
    )
    deleted = supa.service().request(
        "DELETE", "/storage/v1/object/documents", json={"prefixes": [key(supa, "b/four.pdf"), "nope"]}
    )
    assert [d["name"] for d in deleted.json()] == [key(supa, "b/four.pdf")]
    assert supa.sim.object_info("documents", key(supa, "b/four.pdf")) is None


def test_buckets_and_persistence(make_supa: Callable[..., Supa]) -> None:
    supa = make_supa(
        buckets={"documents": BucketConfig(file_size_limit=5_000_000), "private": BucketConfig(yacht_policies=False)}
    )
    assert [b["id"] for b in supa.yacht().get("/storage/v1/bucket").json()] == ["documents"]
    assert [b["id"] for b in supa.service().get("/storage/v1/bucket").json()] == ["documents", "private"]
    assert supa.client().get("/storage/v1/bucket").json() == []
    one = supa.yacht().get("/storage/v1/bucket/documents").json()
    assert one["file_size_limit"] == 5_000_000 and one["public"] is False
    assert supa.yacht().get("/storage/v1/bucket/private").json()["statusCode"] == "404"
    assert supa.yacht().post(f"/storage/v1/object/private/{key(supa)}", content=b"x").json()["statusCode"] == "403"

    supa.yacht().post(f"/storage/v1/object/documents/{key(supa)}", content=b"kept")
    again = make_supa(data_dir=supa.sim.data_dir)
    assert again.sim.read_object("documents", key(supa)) == b"kept"
    assert again.yacht().get(f"/storage/v1/object/documents/{key(supa)}").content == b"kept"


def test_multipart_upload_as_storage3_sends_it(supa: Supa) -> None:
    reply = supa.yacht().post(
        f"/storage/v1/object/documents/{key(supa, 'notes.txt')}",
        files={"file": ("notes.txt", b"hello", "text/plain")},
        data={"cacheControl": "3600"},
    )
    assert reply.status_code == 200, reply.text
    stored = supa.sim.object_info("documents", key(supa, "notes.txt"))
    assert stored is not None and stored.mimetype == "text/plain" and stored.cache_control == "max-age=3600"
    assert supa.sim.read_object("documents", key(supa, "notes.txt")) == b"hello"
