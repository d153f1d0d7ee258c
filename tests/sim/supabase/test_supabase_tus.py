"""TUS 1.0.0 resumable uploads of the simulated Storage over real TLS sockets."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import Supa

MB6 = 6 * 1024 * 1024
TUS = "/storage/v1/upload/resumable"


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(
    client: httpx.Client,
    name: str,
    length: int,
    *,
    upsert: bool = False,
    bucket: str = "documents",
    body: bytes | None = None,
) -> httpx.Response:
    headers = {
        "tus-resumable": "1.0.0",
        "upload-length": str(length),
        "upload-metadata": metadata(
            bucketName=bucket, objectName=name, contentType="application/pdf", cacheControl="3600"
        ),
    }
    if upsert:
        headers["x-upsert"] = "true"
    if body is not None:
        headers["content-type"] = "application/offset+octet-stream"
    return client.post(TUS, headers=headers, content=body)


def patch(
    client: httpx.Client,
    location: str,
    offset: int,
    data: bytes,
    *,
    upsert: bool = False,
    content_type: str = "application/offset+octet-stream",
) -> httpx.Response:
    headers = {"tus-resumable": "1.0.0", "upload-offset": str(offset), "content-type": content_type}
    if upsert:
        headers["x-upsert"] = "true"
    return client.patch(location, headers=headers, content=data)


def head(client: httpx.Client, location: str) -> httpx.Response:
    return client.head(location, headers={"tus-resumable": "1.0.0"})


def wait_for_offset(client: httpx.Client, location: str, offset: int) -> None:
    """The server notices a drop a moment after the client: poll HEAD briefly (loopback)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if head(client, location).headers["upload-offset"] == str(offset):
            return
        time.sleep(0.01)
    raise AssertionError(f"offset never reached {offset}: {head(client, location).headers}")


def name_for(supa: Supa, file: str = "big.pdf") -> str:
    return f"{supa.yacht_a}/02_ENGINEERING/{file}"


def test_options_tells_the_capabilities(supa: Supa) -> None:
    reply = httpx.options(f"{supa.base}{TUS}", verify=supa.tls.client_context(), trust_env=False)
    assert reply.status_code == 204
    assert reply.headers["tus-version"] == "1.0.0"
    assert "creation" in reply.headers["tus-extension"].split(",")
    assert "termination" in reply.headers["tus-extension"].split(",")
    assert int(reply.headers["tus-max-size"]) > 0


def test_upload_in_6mb_chunks_appears_only_when_complete(supa: Supa) -> None:
    client = supa.yacht()
    data = os.urandom(2 * MB6 + 1000)
    name = name_for(supa)
    created = create(client, name, len(data))
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.startswith(f"{supa.base}{TUS}/")
    assert "upload-expires" in created.headers

    probe = head(client, location)
    assert probe.status_code == 200
    assert probe.headers["upload-offset"] == "0"
    assert probe.headers["upload-length"] == str(len(data))
    assert probe.headers["cache-control"] == "no-store"

    for offset in (0, MB6):
        reply = patch(client, location, offset, data[offset : offset + MB6])
        assert reply.status_code == 204, reply.text
        assert reply.headers["upload-offset"] == str(offset + MB6)
        assert supa.sim.list_objects() == []  # never a partial object
    last = patch(client, location, 2 * MB6, data[2 * MB6 :])
    assert last.status_code == 204
    assert last.headers["tus-complete"] == "1"
    assert last.headers["upload-offset"] == str(len(data))

    assert supa.sim.read_object("documents", name) == data
    stored = supa.sim.object_info("documents", name)
    assert stored is not None
    assert stored.mimetype == "application/pdf" and stored.cache_control == "max-age=3600"
    assert stored.owner is not None
    assert stored.etag == md5_etag(data)  # hashed on the way in, like a standard upload
    assert supa.sim.counters.tus_bytes == len(data)
    assert not list((supa.sim.data_dir / "tus").glob("*.part"))  # moved into storage, not copied


def test_protocol_refusals_close_the_connection(supa: Supa) -> None:
    client = supa.yacht()
    data = os.urandom(MB6 + 10)
    location = create(client, name_for(supa), len(data)).headers["location"]

    no_version = client.patch(
        location, headers={"upload-offset": "0", "content-type": "application/offset+octet-stream"}, content=b"x"
    )
    assert no_version.status_code == 412
    # Small bodies: a refusal is answered before the body is read, then the connection closes.
    wrong_type = patch(client, location, 0, data[:10], content_type="application/octet-stream")
    assert (wrong_type.status_code, wrong_type.text) == (400, "Invalid content-type\n")
    assert wrong_type.headers["connection"] == "close"
    wrong_offset = patch(client, location, 5, data[:10])
    assert (wrong_offset.status_code, wrong_offset.text) == (409, "Upload-Offset conflict\n")
    odd_chunk = patch(client, location, 0, data[:1000])
    assert odd_chunk.status_code == 400
    assert "6291456" in odd_chunk.text
    tiny = create(client, name_for(supa, "tiny.pdf"), 10).headers["location"]
    too_much = patch(client, tiny, 0, b"x" * 15)
    assert (too_much.status_code, too_much.text) == (413, "upload's size exceeded\n")
    assert head(client, location).headers["upload-offset"] == "0"  # nothing was kept
    unknown = head(client, f"{supa.base}{TUS}/bm9wZS9ub3BlL25vcGU")
    assert unknown.status_code == 404


def test_resume_after_the_link_drops_mid_patch(make_supa: Callable[..., Supa]) -> None:
    supa = make_supa()
    client = supa.yacht()
    data = os.urandom(MB6 + 500_000)
    name = name_for(supa)
    location = create(client, name, len(data)).headers["location"]
    path = location.removeprefix(supa.base)
    token = supa.sim.mint_yacht_key(supa.yacht_a)
    head_lines = (
        f"PATCH {path} HTTP/1.1\nHost: 127.0.0.1:{supa.server.port}\napikey: {supa.sim.anon_key}\n"
        f"Authorization: Bearer {token}\nTus-Resumable: 1.0.0\nUpload-Offset: 0\n"
        f"Content-Type: application/offset+octet-stream\nContent-Length: {MB6}"
    )
    supa.raw(head_lines, data[:1_000_000], close_after_send=True)
    wait_for_offset(client, location, 1_000_000)  # what arrived before the drop is kept

    # The sim restarts (a demo relaunch): the upload survives on disk.
    again = make_supa(data_dir=supa.sim.data_dir)
    moved = location.replace(supa.base, again.base)
    client = again.yacht()
    assert head(client, moved).headers["upload-offset"] == "1000000"
    rest = patch(client, moved, 1_000_000, data[1_000_000:])
    assert rest.status_code == 204, rest.text
    assert again.sim.read_object("documents", name) == data
    stored = again.sim.object_info("documents", name)
    assert stored is not None and stored.etag == md5_etag(data)  # read back from the file


def test_bytes_cut_back_do_not_spoil_the_etag(supa: Supa) -> None:
    """A chunked PATCH of an odd size is refused after it landed and cut back off the file:
    the running MD5 had seen those bytes, so the ETag comes from the file instead."""
    client = supa.yacht()
    data = os.urandom(MB6 + 500_000)
    name = name_for(supa)
    location = create(client, name, len(data)).headers["location"]
    headers = {"tus-resumable": "1.0.0", "upload-offset": "0", "content-type": "application/offset+octet-stream"}
    odd = client.patch(location, headers=headers, content=iter([os.urandom(1000)]))  # chunked: no length
    assert odd.status_code == 400
    assert head(client, location).headers["upload-offset"] == "0"
    assert patch(client, location, 0, data[:MB6]).status_code == 204
    assert patch(client, location, MB6, data[MB6:]).status_code == 204
    stored = supa.sim.object_info("documents", name)
    assert stored is not None and stored.etag == md5_etag(data)


def test_a_lost_answer_is_found_again_with_head(supa: Supa) -> None:
    client = supa.yacht()
    data = os.urandom(MB6 + 1)
    location = create(client, name_for(supa), len(data)).headers["location"]
    supa.faults.script("storage", "reset", method="PATCH", reset_after=0)
    with pytest.raises(httpx.TransportError):
        patch(client, location, 0, data[:MB6])
    assert head(client, location).headers["upload-offset"] == str(MB6)  # the chunk did land
    assert patch(client, location, MB6, data[MB6:]).status_code == 204
    assert supa.sim.read_object("documents", name_for(supa)) == data


def test_expired_upload_url_is_gone(make_supa: Callable[..., Supa]) -> None:
    supa = make_supa(tus_url_lifetime_s=3600)
    client = supa.yacht()
    location = create(client, name_for(supa), 10).headers["location"]
    supa.sim.advance(3601)
    assert head(client, location).status_code == 410
    expired = patch(client, location, 0, b"0123456789")
    assert (expired.status_code, expired.text) == (410, "The file for this url no longer exists\n")
    fresh = create(client, name_for(supa), 10)
    assert patch(client, fresh.headers["location"], 0, b"0123456789").status_code == 204


def test_two_uploads_to_one_key_the_second_to_finish_loses(supa: Supa) -> None:
    client = supa.yacht()
    name = name_for(supa)
    first = create(client, name, 4).headers["location"]
    second = create(client, name, 4)
    assert second.status_code == 201  # both may start, as on the real server
    assert patch(client, first, 0, b"AAAA").status_code == 204
    loser = patch(client, second.headers["location"], 0, b"BBBB")
    assert (loser.status_code, loser.text) == (409, "The resource already exists")
    assert supa.sim.read_object("documents", name) == b"AAAA"

    # With x-upsert on every request, the last to finish wins.
    third = create(client, name, 4, upsert=True).headers["location"]
    assert patch(client, third, 0, b"CCCC", upsert=True).status_code == 204
    assert supa.sim.read_object("documents", name) == b"CCCC"


def test_x_upsert_must_be_sent_on_every_request(supa: Supa) -> None:
    client = supa.yacht()
    name = name_for(supa)
    client.post(f"/storage/v1/object/documents/{name}", content=b"old")
    assert create(client, name, 3).text == "The resource already exists"
    location = create(client, name, 3, upsert=True).headers["location"]
    forgot = patch(client, location, 0, b"new")
    assert forgot.status_code == 409  # the PATCH re-checks with its own x-upsert header
    assert patch(client, location, 0, b"new", upsert=True).status_code == 204
    assert supa.sim.read_object("documents", name) == b"new"


def test_creation_refusals(make_supa: Callable[..., Supa]) -> None:
    supa = make_supa(global_file_size_limit=1000)
    client = supa.yacht()
    other_yacht = create(client, f"{supa.yacht_b}/x.pdf", 10)
    assert (other_yacht.status_code, other_yacht.text) == (403, "new row violates row-level security policy")
    assert create(client, name_for(supa), 10, bucket="nowhere").status_code == 404
    too_big = create(client, name_for(supa), 1001)
    assert (too_big.status_code, too_big.text) == (413, "Maximum size exceeded\n")
    bad_key = create(client, f"{supa.yacht_a}/Pièce #1.pdf", 10)
    assert (bad_key.status_code, bad_key.text) == (400, f"Invalid key: {supa.yacht_a}/Pièce #1.pdf")
    no_metadata = client.post(TUS, headers={"tus-resumable": "1.0.0", "upload-length": "1"})
    assert no_metadata.status_code == 400
    assert supa.sim.tus_uploads() == []


def test_creation_with_upload_and_empty_file(supa: Supa) -> None:
    client = supa.yacht()
    small = create(client, name_for(supa, "small.pdf"), 5, body=b"hello")
    assert small.status_code == 201
    assert small.headers["upload-offset"] == "5"
    assert supa.sim.read_object("documents", name_for(supa, "small.pdf")) == b"hello"
    empty = create(client, name_for(supa, "empty.pdf"), 0)
    assert empty.status_code == 201
    assert supa.sim.read_object("documents", name_for(supa, "empty.pdf")) == b""


def test_location_with_another_host_and_prefix_is_served(supa: Supa) -> None:
    supa.sim.tus_location_prefix = f"https://localhost:{supa.server.port}/edge/storage/v1/upload/resumable"
    supa.server.record_paths = True
    client = supa.yacht()
    location = create(client, name_for(supa), 3).headers["location"]
    assert location.startswith(f"https://localhost:{supa.server.port}/edge/storage/v1/upload/resumable/")
    assert patch(client, location, 0, b"abc").status_code == 204
    assert any(p.startswith("PATCH /edge/storage/v1/upload/resumable/") for p in supa.server.stats.paths)
    assert supa.sim.read_object("documents", name_for(supa)) == b"abc"


def test_termination(supa: Supa) -> None:
    client = supa.yacht()
    location = create(client, name_for(supa), 10).headers["location"]
    done = create(client, name_for(supa, "done.pdf"), 2).headers["location"]
    patch(client, done, 0, b"ok")
    assert client.delete(location, headers={"tus-resumable": "1.0.0"}).status_code == 204
    assert head(client, location).status_code == 404
    # As on the real server, the write check comes first: without x-upsert the object exists.
    assert client.delete(done, headers={"tus-resumable": "1.0.0"}).status_code == 409
    finished = client.delete(done, headers={"tus-resumable": "1.0.0", "x-upsert": "true"})
    assert (finished.status_code, finished.text) == (400, "Cannot terminate an already completed upload")


def test_a_new_patch_takes_the_lock_from_a_stalled_one(supa: Supa) -> None:
    client = supa.yacht()
    data = os.urandom(MB6)
    location = create(client, name_for(supa), len(data)).headers["location"]
    path = location.removeprefix(supa.base)
    token = supa.sim.mint_yacht_key(supa.yacht_a)
    stalled_head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{supa.server.port}\r\napikey: {supa.sim.anon_key}\r\n"
        f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {MB6}\r\n\r\n"
    )
    with supa.tls_socket() as stalled:
        stalled.sendall(stalled_head.encode() + data[:1_000_000])  # then the link goes quiet
        wait_for_offset(client, location, 1_000_000)
        retry = patch(client, location, 0, data[:10])  # a retry from a stale offset
        assert (retry.status_code, retry.text) == (409, "Upload-Offset conflict\n")
        answer = b""
        while chunk := stalled.recv(4096):  # until the server closes
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400")
        assert b"Request aborted due to lock acquired" in answer
    assert patch(client, location, 1_000_000, data[1_000_000:]).status_code == 204
    assert supa.sim.read_object("documents", name_for(supa)) == data
    stored = supa.sim.object_info("documents", name_for(supa))
    assert stored is not None and stored.etag == md5_etag(data)
